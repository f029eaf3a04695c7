/**
 * What the API process does before it serves, whatever the runtime: reads
 * its settings, opens its Resonate client, registers every durable function
 * in co-located mode, and builds the app. The entrypoints (`main.ts` on
 * Bun, `main.deno.ts` on Deno) only serve it and stop it.
 */

import type { Message } from "@resonatehq/sdk";
import {
  type Config,
  ConfigError,
  GROUPS,
  loadConfig,
  requireCallerAuth,
  targetsFor,
} from "../core/config.ts";
import { observeFunctions } from "../core/observability/functions.ts";
import { createLogger, type Logger } from "../core/observability/logger.ts";
import { ApiMetrics } from "../core/observability/metrics.ts";
import { startTracing } from "../core/observability/tracing.ts";
import { exitWithParent } from "../core/parent-process.ts";
import { uniquePid } from "../core/resonate/identity.ts";
import { resonateClient } from "../core/resonate/network.ts";
import { baselineQuote } from "../workers/pricing.ts";
import { registerGroup } from "../workers/register.ts";
import { createApp } from "./app.ts";
import { type CallerAuth, callerAuth } from "./auth/service.ts";
import { makeDeps } from "./deps.ts";
import { pushAddress, pushReceiver } from "./resonate/push.ts";

export interface BootedApi {
  app: ReturnType<typeof createApp>;
  /** Where to listen. */
  port: number;
  hostname: string;
  mode: "colocated" | "distributed";
  /** This process's Resonate pid. */
  pid: string;
  /**
   * With METRICS_PORT: where this process alone serves `GET /metrics` (0:
   * a port the OS picks), besides the port it shares with the other API
   * processes; `fetch` answers it.
   */
  metrics: { port: number; hostname: string; fetch(request: Request): Promise<Response> } | undefined;
  /** After SIGTERM, the most the process takes to stop (ms). */
  shutdownGraceMs: number;
  /** After SIGTERM, how long it still listens, answering with `Connection: close` (ms). */
  shutdownListenMs: number;
  /** EXIT_WITH_PARENT: stop when the process that started this one is gone. */
  exitWithParent: boolean;
  /** Begins the stop: readiness says `draining`, waits answer as things are, event streams end with a reconnect. */
  drain(): void;
  log: Logger;
  /** Closes the Resonate client and what co-located mode opened (after the server stopped). */
  close(): Promise<void>;
}

/** How an entrypoint's runtime serves one more listener of this process (HTTP push), and stops it. */
export type Listen = (
  at: { port: number; hostname: string },
  fetch: (request: Request) => Promise<Response>,
) => { port: number; stop(): Promise<void> };

/**
 * Boots the API; a bad setting stops the process with exit 2 and a message
 * that names it. With `RESONATE_PUSH_HOST`, `listen` serves the listener the
 * Resonate server pushes this process's results to, before the client opens.
 */
export async function bootApi(listen: Listen): Promise<BootedApi> {
  let config: Config;
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
  const pid = config.apiPid ?? uniquePid(group);
  const log = createLogger({ level: config.logLevel, base: { service: "api", pid } });
  const tracing = await startTracing(config.tracing, "api");
  const metrics = new ApiMetrics();
  let receive: (message: Message) => void = () => {};
  let push: ReturnType<Listen> | undefined;
  if (config.resonatePush) {
    const at = { port: config.resonatePush.port, hostname: config.resonatePush.host };
    try {
      push = listen(
        at,
        pushReceiver({
          pid,
          token: config.resonatePush.token,
          receive: (message) => receive(message),
          warn: (message) => log.warn({ event: "resonate_push_refused" }, message),
          counted: (outcome) => metrics.resonatePushes.inc({ outcome }),
        }),
      );
    } catch (error) {
      console.error(
        `api: cannot listen for pushes on ${at.hostname}:${at.port} (RESONATE_PUSH_HOST, RESONATE_PUSH_PORT): ${error}`,
      );
      process.exit(2);
    }
  }
  const client = resonateClient(
    config,
    group,
    pid,
    push && config.resonatePush
      ? { address: pushAddress(config.resonatePush.host, push.port, pid) }
      : undefined,
  );
  const { resonate, streamOpen, search, traces } = client;
  receive = client.receive;
  if (push && config.resonatePush)
    log.info(
      { address: pushAddress(config.resonatePush.host, push.port, pid) },
      "results come by HTTP push to this address",
    );
  metrics.processInfo.set({ pid }, 1);
  const closers: { close(): Promise<void> }[] = [];
  const targets = targetsFor(config, group);
  if (config.colocated) {
    observeFunctions(resonate, {
      metrics: metrics.functions,
      log,
      traces: tracing.enabled ? traces : undefined,
    });
    for (const g of GROUPS) closers.push(await registerGroup(resonate, g, config, targets));
  }
  const draining = new AbortController();
  const app = createApp(
    makeDeps(resonate, config, targets, Date.now, { metrics, log, search, draining: draining.signal }),
    {
      webhookSecret: config.webhookSecret as string,
      auth,
      ...(config.benchRoutes ? { bench: baselineQuote() } : {}),
      tracing,
    },
  );
  // Results reach this process on its message stream: it serves once that is open.
  await streamOpen;
  return {
    app,
    port: config.port,
    hostname: config.host,
    mode: config.colocated ? "colocated" : "distributed",
    pid,
    metrics:
      config.metricsPort === undefined
        ? undefined
        : {
            port: config.metricsPort,
            hostname: config.metricsHost,
            fetch: async (request) =>
              new URL(request.url).pathname === "/metrics"
                ? app.handle(request)
                : new Response("not found\n", { status: 404 }),
          },
    shutdownGraceMs: config.shutdownGraceMs,
    shutdownListenMs: Math.min(config.shutdownListenMs, config.shutdownGraceMs),
    exitWithParent: config.exitWithParent,
    drain: () => draining.abort(),
    log,
    async close() {
      await resonate.stop();
      await push?.stop();
      for (const c of closers) await c.close();
      await tracing.shutdown();
    },
  };
}

/** Prints the line the harness waits for, after `api metrics <pid> <url>` when this process has a metrics port. */
export function announce(url: string, api: BootedApi, runtime: string, metricsUrl?: string): void {
  if (metricsUrl) console.log(`api metrics ${api.pid} ${metricsUrl}`);
  console.log(
    `api listening on ${url} (docs at ${url}/docs, mode ${api.mode}, runtime ${runtime}, pid ${api.pid})`,
  );
}

/** How a runtime's server stops: `drain` stops taking connections and resolves once the requests in flight are answered. */
export interface Serving {
  drain(): Promise<unknown>;
}

/**
 * Stops on SIGTERM, SIGINT or the parent's death (`EXIT_WITH_PARENT`), as
 * an orchestrator expects of one replica among several:
 * 1. readiness answers 503 `draining`, `Prefer: wait` and quote waits answer
 *    with things as they are, every job event stream gets a `reconnect`
 *    event and ends, and every answer says `Connection: close` (`api.drain()`);
 * 2. for `SHUTDOWN_LISTEN_MS` it still takes new connections, so a client
 *    that sends on a kept-alive connection as the process stops, or a load
 *    balancer that has not read `/readyz` yet, is answered and not reset;
 * 3. the server stops taking connections (the other processes on the port
 *    take them) and the requests in flight finish (`serving.drain()`);
 * 4. the Resonate client closes, and the process exits 0.
 * Whatever is still open when `SHUTDOWN_GRACE_MS` runs out is cut and the
 * process exits 0 all the same; a second signal exits at once (130).
 */
export function stopOnSignals(api: BootedApi, serving: Serving): void {
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) {
      api.log.warn({ signal }, "second signal: exiting at once");
      process.exit(130);
    }
    stopping = true;
    const started = Date.now();
    api.log.info({ signal, grace_ms: api.shutdownGraceMs }, "stopping: draining");
    const deadline = setTimeout(() => {
      api.log.warn({ grace_ms: api.shutdownGraceMs }, "shutdown grace ran out: cutting what is still open");
      process.exit(0);
    }, api.shutdownGraceMs);
    api.drain();
    await new Promise((resolve) => setTimeout(resolve, api.shutdownListenMs));
    await serving.drain();
    await api.close();
    clearTimeout(deadline);
    api.log.info({ ms: Date.now() - started }, "stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
  exitWithParent(() => shutdown("parent gone"), api.exitWithParent);
}
