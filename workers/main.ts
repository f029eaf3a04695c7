/**
 * A worker process of one group.
 *
 *   RESONATE_URL=http://127.0.0.1:8001 bun workers/main.ts <order-workers|pricing-workers|db|business>
 *
 * Registers the group's durable functions, prints `worker ready <group>
 * <pid>` and stops cleanly on SIGTERM/SIGINT (see `shutdown`). Settings come from the same
 * environment variables as the API (see README). Each run of a durable
 * function is logged as a JSON line (LOG_LEVEL); with METRICS_PORT set (0:
 * a port the OS picks) it serves its metrics there and prints
 * `worker metrics <group> <pid> <url>` before the ready line.
 */
import {
  ConfigError,
  GROUPS,
  type Group,
  loadWorkerConfig,
  targetsFor,
  type WorkerConfig,
} from "../core/config.ts";
import { observeFunctions } from "../core/observability/functions.ts";
import { createLogger } from "../core/observability/logger.ts";
import { WorkerMetrics } from "../core/observability/metrics.ts";
import { type MetricsServer, serveMetrics } from "../core/observability/metrics-server.ts";
import { startTracing } from "../core/observability/tracing.ts";
import { exitWithParent } from "../core/parent-process.ts";
import { uniquePid } from "../core/resonate/identity.ts";
import { resonateClient } from "../core/resonate/network.ts";
import { registerGroup } from "./register.ts";

const group = process.argv[2] as Group | undefined;
if (!group || !GROUPS.includes(group)) {
  console.error(`usage: bun workers/main.ts <${GROUPS.join("|")}>`);
  process.exit(2);
}

let config: WorkerConfig;
try {
  config = loadWorkerConfig();
} catch (error) {
  console.error(error instanceof ConfigError ? `worker ${group}: ${error.message}` : error);
  process.exit(2);
}
if (!config.resonateUrl) {
  console.error(`worker ${group}: RESONATE_URL is required (a worker talks to a Resonate server)`);
  process.exit(2);
}

const pid = config.workerPid ?? uniquePid(group);
const { resonate, streamOpen, handOff, traces } = resonateClient(config, group, pid);
const metrics = new WorkerMetrics();
const log = createLogger({ level: config.logLevel, base: { service: "worker", group, pid } });
const tracing = await startTracing(config.tracing, group);
observeFunctions(resonate, {
  metrics: metrics.functions,
  log,
  traces: tracing.enabled ? traces : undefined,
});
const resources = await registerGroup(resonate, group, config, targetsFor({ colocated: false }));
let metricsServer: MetricsServer | undefined;
if (config.metricsPort !== undefined) {
  try {
    metricsServer = serveMetrics(metrics.registry, {
      hostname: config.metricsHost,
      port: config.metricsPort,
      token: config.metricsToken,
    });
  } catch (error) {
    console.error(
      `worker ${group}: cannot serve metrics on ${config.metricsHost}:${config.metricsPort}: ${error}`,
    );
    process.exit(2);
  }
  console.log(`worker metrics ${group} ${pid} ${metricsServer.url}`);
}
await streamOpen;
console.log(`worker ready ${group} ${pid}`);

/**
 * SIGTERM (or SIGINT, or the parent's death): take no new task, let the
 * steps under way finish within SHUTDOWN_GRACE_MS, hand back what is still
 * held so another worker takes it at once, close the database after the
 * last step, exit 0. A second signal exits at once.
 */
let stopping = false;
async function shutdown(signal: string) {
  if (stopping) {
    log.warn({ signal }, "second signal: exiting at once");
    process.exit(130);
  }
  stopping = true;
  const started = Date.now();
  // Most of the grace goes to the steps; the rest to handing back and closing.
  const handBackBy =
    started + Math.max(0, config.shutdownGraceMs - Math.min(1_000, config.shutdownGraceMs / 5));
  const cut = setTimeout(() => {
    log.warn({ grace_ms: config.shutdownGraceMs }, "shutdown grace ran out: exiting");
    process.exit(0);
  }, config.shutdownGraceMs);
  log.info({ signal, grace_ms: config.shutdownGraceMs }, "stopping: taking no new task");
  const { heldAtStart, released } = await handOff(handBackBy);
  await resonate.stop();
  await resources.close();
  await metricsServer?.stop();
  await tracing.shutdown();
  clearTimeout(cut);
  log.info({ held_at_start: heldAtStart, released, ms: Date.now() - started }, "stopped");
  process.exit(0);
}
process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));
exitWithParent(() => shutdown("parent gone"), config.exitWithParent);
