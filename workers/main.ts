/**
 * A worker process of one group.
 *
 *   RESONATE_URL=http://127.0.0.1:8001 bun workers/main.ts <order-workers|pricing-workers|db|business>
 *
 * Registers the group's durable functions, prints `worker ready <group>
 * <pid>` and stops cleanly on SIGTERM/SIGINT. Settings come from the same
 * environment variables as the API (see README). Each run of a durable
 * function is logged as a JSON line (LOG_LEVEL); with METRICS_PORT set (0:
 * a port the OS picks) it serves its metrics there and prints
 * `worker metrics <group> <pid> <url>` before the ready line.
 */
import { ConfigError, GROUPS, type Group, loadConfig, targetsFor } from "../src/config.ts";
import { observeFunctions } from "../src/observability/functions.ts";
import { createLogger } from "../src/observability/logger.ts";
import { WorkerMetrics } from "../src/observability/metrics.ts";
import { type MetricsServer, serveMetrics } from "../src/observability/metrics-server.ts";
import { exitWithParent } from "../src/parent-process.ts";
import { resonateClient } from "../src/resonate/network.ts";
import { registerGroup } from "./register.ts";

const group = process.argv[2] as Group | undefined;
if (!group || !GROUPS.includes(group)) {
  console.error(`usage: bun workers/main.ts <${GROUPS.join("|")}>`);
  process.exit(2);
}

let config: ReturnType<typeof loadConfig>;
try {
  config = loadConfig();
} catch (error) {
  console.error(error instanceof ConfigError ? `worker ${group}: ${error.message}` : error);
  process.exit(2);
}
if (!config.resonateUrl) {
  console.error(`worker ${group}: RESONATE_URL is required (a worker talks to a Resonate server)`);
  process.exit(2);
}

const pid = process.env.WORKER_PID || `${group}-${process.pid}`;
const { resonate, streamOpen } = resonateClient(config, group, pid);
const metrics = new WorkerMetrics();
observeFunctions(resonate, {
  metrics: metrics.functions,
  log: createLogger({ level: config.logLevel, base: { service: "worker", group, pid } }),
});
const resources = await registerGroup(resonate, group, config, targetsFor(config));
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

let stopping = false;
async function shutdown() {
  if (stopping) return;
  stopping = true;
  await metricsServer?.stop();
  await resonate.stop();
  await resources.close();
  process.exit(0);
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
exitWithParent(shutdown);
