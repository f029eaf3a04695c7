import type { Resonate } from "@resonatehq/sdk";
import { BoundedMap } from "./bounded-map.ts";
import type { Config, Targets } from "./config.ts";
import { notFound } from "./errors.ts";
import { invocationObserver } from "./observability/invocations.ts";
import { type Logger, silentLogger } from "./observability/logger.ts";
import { ApiMetrics } from "./observability/metrics.ts";
import { touchPromise } from "./observability/request-context.ts";
import { isNotFound } from "./resonate/durable.ts";
import { Launcher } from "./resonate/launcher.ts";

/** What every feature's service functions get: the Resonate client, config, where functions run, a clock, caches, metrics and the logger. */
export interface Deps {
  resonate: Resonate;
  launcher: Launcher;
  config: Config;
  targets: Targets;
  now: () => number;
  /** Approval promise ids by order, once the workflow has registered them (they never change). */
  approvalIds: BoundedMap<string, string>;
  /** This app's metrics, on a registry of its own (`GET /metrics`). */
  metrics: ApiMetrics;
  log: Logger;
}

/** `metrics` defaults to a fresh registry, `log` to a logger that writes nothing (the entrypoint hands in the real one). */
export function makeDeps(
  resonate: Resonate,
  config: Config,
  targets: Targets,
  now: () => number = Date.now,
  observability: { metrics?: ApiMetrics; log?: Logger } = {},
): Deps {
  const metrics = observability.metrics ?? new ApiMetrics();
  return {
    resonate,
    launcher: new Launcher(resonate, config.colocated, invocationObserver(metrics)),
    config,
    targets,
    now,
    approvalIds: new BoundedMap(100_000),
    metrics,
    log: observability.log ?? silentLogger(),
  };
}

export type PromiseRecord = Awaited<ReturnType<Resonate["promises"]["get"]>>;

/** Reads a durable promise without waiting; an unknown id is a 404 naming `what`. */
export async function readPromise(deps: Deps, id: string, what: string): Promise<PromiseRecord> {
  touchPromise(id);
  try {
    return await deps.resonate.promises.get(id);
  } catch (error) {
    if (isNotFound(error)) throw notFound(what);
    throw error;
  }
}
