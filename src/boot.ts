/**
 * What the API process does before it serves, whatever the runtime: reads
 * its settings, opens its Resonate client, registers every durable function
 * in co-located mode, and builds the app. The entrypoints (`main.ts` on
 * Bun, `main.deno.ts` on Deno) only serve it and stop it.
 */
import { baselineQuote } from "../workers/pricing.ts";
import { registerGroup } from "../workers/register.ts";
import { createApp } from "./app.ts";
import { type CallerAuth, callerAuth } from "./auth/service.ts";
import { ConfigError, GROUPS, loadConfig, requireCallerAuth, targetsFor } from "./config.ts";
import { makeDeps } from "./deps.ts";
import { observeFunctions } from "./observability/functions.ts";
import { createLogger } from "./observability/logger.ts";
import { ApiMetrics } from "./observability/metrics.ts";
import { exitWithParent } from "./parent-process.ts";
import { resonateClient } from "./resonate/network.ts";

export interface BootedApi {
  app: ReturnType<typeof createApp>;
  /** Where to listen. */
  port: number;
  hostname: string;
  mode: "colocated" | "distributed";
  /** Closes the Resonate client and what co-located mode opened (after the server stopped). */
  close(): Promise<void>;
}

/** Boots the API; a bad setting stops the process with exit 2 and a message that names it. */
export async function bootApi(): Promise<BootedApi> {
  let config: ReturnType<typeof loadConfig>;
  let auth: CallerAuth;
  try {
    config = loadConfig();
    if (!config.webhookSecret) throw new ConfigError("WEBHOOK_SECRET is required (npm start generates one)");
    requireCallerAuth(config.auth);
    auth = await callerAuth(config.auth);
  } catch (error) {
    console.error(error instanceof ConfigError ? `api: ${error.message}` : error);
    process.exit(2);
  }
  const group = "api";
  const pid = process.env.API_PID || `api-${process.pid}`;
  const { resonate, streamOpen, search } = resonateClient(config, group, pid);
  const log = createLogger({ level: config.logLevel, base: { service: "api", pid } });
  const metrics = new ApiMetrics();
  const closers: { close(): Promise<void> }[] = [];
  const targets = targetsFor(config, group);
  if (config.colocated) {
    observeFunctions(resonate, { metrics: metrics.functions, log });
    for (const g of GROUPS) closers.push(await registerGroup(resonate, g, config, targets));
  }
  const app = createApp(makeDeps(resonate, config, targets, Date.now, { metrics, log, search }), {
    webhookSecret: config.webhookSecret as string,
    auth,
    ...(config.benchRoutes ? { bench: baselineQuote() } : {}),
  });
  // Results reach this process on its message stream: it serves once that is open.
  await streamOpen;
  return {
    app,
    port: config.port,
    hostname: process.env.HOST || "127.0.0.1",
    mode: config.colocated ? "colocated" : "distributed",
    async close() {
      await resonate.stop();
      for (const c of closers) await c.close();
    },
  };
}

/** Prints the line the harness waits for. */
export function announce(url: string, api: BootedApi, runtime: string): void {
  console.log(`api listening on ${url} (docs at ${url}/docs, mode ${api.mode}, runtime ${runtime})`);
}

/** Stops once on SIGTERM, SIGINT or the parent's death (`EXIT_WITH_PARENT`): `stopServing`, then the client. */
export function stopOnSignals(api: BootedApi, stopServing: () => Promise<unknown>): void {
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    await stopServing();
    await api.close();
    process.exit(0);
  };
  process.on("SIGTERM", shutdown);
  process.on("SIGINT", shutdown);
  exitWithParent(shutdown);
}
