import type { ApiMetrics } from "../../core/observability/metrics.ts";
import type { LaunchObserver } from "../resonate/launcher.ts";
import { touchWorkflow } from "./request-context.ts";

/**
 * What the API's Launcher reports: each start names the workflow on the
 * request's log line and counts as started once acknowledged; a result the
 * API awaits (quotes, checkouts, lookups) counts by outcome with the time
 * since the start. Jobs and approvals are not awaited here, so their
 * outcomes are counted by the workers that run them
 * (`durable_function_ends_total`), not by this process.
 */
export function invocationObserver(metrics: ApiMetrics): LaunchObserver {
  return {
    starting: (_fn, id) => touchWorkflow(id),
    started: (fn) => metrics.invocationsStarted.inc({ function: fn }),
    finished: (fn, outcome, seconds) => {
      metrics.invocationsFinished.inc({ function: fn, outcome });
      metrics.invocationSeconds.observe({ function: fn, outcome }, seconds);
    },
  };
}
