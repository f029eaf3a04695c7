/**
 * The Prometheus metrics of the API and of the workers, with prom-client.
 * Each process (and each app a test builds) has its own `Registry`, handed
 * down in `Deps` or to the worker's entrypoint; nothing is registered on
 * prom-client's global registry.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";

/** Latency buckets (s): a cached quote or a health check takes a tenth of a millisecond, a checkout waits up to 10 s. */
const LATENCY_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];
/** Workflows run from milliseconds to an hour's timeout. */
const INVOCATION_BUCKETS = [...LATENCY_BUCKETS, 30, 60, 300, 1800, 3600];

/** How an awaited invocation ended, from its caller's side. */
export type InvocationOutcome = "completed" | "failed" | "timed_out" | "canceled";
/** How one run of a function's body ended. */
export type RunOutcome = "resolved" | "rejected";
/** Which run of a body it is: the first in this process, a workflow's replay after it waited, a leaf's retry. */
export type RunKind = "first" | "replay" | "retry";
/** Why a quote request was shed with 503. */
export type ShedReason = "max_waiting" | "start_deadline";
/** What became of a webhook delivery. */
export type DeliveryOutcome =
  | "accepted"
  | "duplicate"
  | "conflict"
  | "bad_signature"
  | "unknown"
  | "not_ready"
  | "invalid"
  | "error";

/**
 * Durable functions as the process that runs them sees them (the workers,
 * or the API when co-located): every run of a body, and the steps in it.
 */
export class FunctionMetrics {
  /**
   * Each run of a function's body, by `run`: `first` (the first in this
   * process), `replay` (a workflow run again from the start when it resumes
   * after waiting), `retry` (a leaf's attempt after the first).
   */
  readonly starts: Counter<"function" | "run">;
  /** Each run that returned or threw; a workflow that suspended has a start and no end. */
  readonly ends: Counter<"function" | "outcome">;
  readonly runSeconds: Histogram<"function" | "outcome">;
  /** Each attempt of a `ctx.run` step inside `function`, and each attempt of a leaf `function`. */
  readonly steps: Counter<"function">;
  /** Of those, the attempts after the first (the SDK retried a step that threw). */
  readonly stepRetries: Counter<"function">;

  constructor(registry: Registry) {
    const registers = [registry];
    this.starts = new Counter({
      name: "durable_function_starts_total",
      help: "Runs of a durable function's body begun in this process: first, replay (a workflow resumed after waiting), retry (a leaf's later attempt)",
      labelNames: ["function", "run"],
      registers,
    });
    this.ends = new Counter({
      name: "durable_function_ends_total",
      help: "Runs of a durable function's body that returned (resolved) or threw (rejected)",
      labelNames: ["function", "outcome"],
      registers,
    });
    this.runSeconds = new Histogram({
      name: "durable_function_run_duration_seconds",
      help: "Time from a run's start to its end in this process",
      labelNames: ["function", "outcome"],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.steps = new Counter({
      name: "durable_steps_total",
      help: "Attempts of ctx.run steps inside a function, and attempts of leaf functions",
      labelNames: ["function"],
      registers,
    });
    this.stepRetries = new Counter({
      name: "durable_step_retries_total",
      help: "Step and leaf attempts after the first: the SDK retried after a failure",
      labelNames: ["function"],
      registers,
    });
  }
}

/** A worker process's metrics: its functions. */
export class WorkerMetrics {
  readonly registry = new Registry();
  readonly functions = new FunctionMetrics(this.registry);
}

/** The API's metrics; in co-located mode the functions it runs too. */
export class ApiMetrics {
  readonly registry = new Registry();
  readonly httpRequests: Counter<"method" | "route" | "status">;
  readonly httpSeconds: Histogram<"method" | "route" | "status">;
  /** Invocations started (or joined) through the Launcher. */
  readonly invocationsStarted: Counter<"function">;
  /** Invocations whose result this process awaited, by how they ended. */
  readonly invocationsFinished: Counter<"function" | "outcome">;
  /** From the Launcher's `begin` to the awaited result. */
  readonly invocationSeconds: Histogram<"function" | "outcome">;
  readonly quotesShed: Counter<"reason">;
  readonly quotesPending: Counter;
  readonly quotesCached: Counter;
  readonly webhookDeliveries: Counter<"webhook" | "outcome">;
  /** Messages the Resonate server pushed here (`RESONATE_PUSH_HOST`), by outcome. */
  readonly resonatePushes: Counter<"outcome">;
  /** Requests that arrived and are not answered yet (what a stopping process waits for). */
  readonly requestsInFlight: Gauge;
  /** 1, labeled with this process's Resonate pid: which of several API processes on one port answered a scrape. */
  readonly processInfo: Gauge<"pid">;
  readonly functions: FunctionMetrics;

  constructor() {
    const registers = [this.registry];
    this.requestsInFlight = new Gauge({
      name: "http_requests_in_flight",
      help: "Requests that arrived and are not answered yet",
      registers,
    });
    this.processInfo = new Gauge({
      name: "api_process_info",
      help: "Always 1; `pid` is the Resonate pid of the API process that served this scrape",
      labelNames: ["pid"],
      registers,
    });
    this.httpRequests = new Counter({
      name: "http_requests_total",
      help: "HTTP requests answered, by route pattern, method and status",
      labelNames: ["method", "route", "status"],
      registers,
    });
    this.httpSeconds = new Histogram({
      name: "http_request_duration_seconds",
      help: "Time from a request's arrival to its response, by route pattern, method and status",
      labelNames: ["method", "route", "status"],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.invocationsStarted = new Counter({
      name: "durable_invocations_started_total",
      help: "Durable invocations started, or joined under an id already used, by function",
      labelNames: ["function"],
      registers,
    });
    this.invocationsFinished = new Counter({
      name: "durable_invocations_finished_total",
      help: "Durable invocations whose result this process awaited, by function and outcome (completed, failed, timed_out, canceled)",
      labelNames: ["function", "outcome"],
      registers,
    });
    this.invocationSeconds = new Histogram({
      name: "durable_invocation_duration_seconds",
      help: "Time from the start of an invocation (beginRpc/beginRun) to its awaited result",
      labelNames: ["function", "outcome"],
      buckets: INVOCATION_BUCKETS,
      registers,
    });
    this.quotesShed = new Counter({
      name: "quote_requests_shed_total",
      help: "Quote requests answered 503: too many waiting (max_waiting), or not started within the deadline (start_deadline)",
      labelNames: ["reason"],
      registers,
    });
    this.quotesPending = new Counter({
      name: "quote_requests_pending_total",
      help: "Quote requests answered 202: the deadline passed and the quote goes on",
      registers,
    });
    this.quotesCached = new Counter({
      name: "quote_requests_cached_total",
      help: "Quote requests answered from the API's cache of finished quotes, with no call to Resonate",
      registers,
    });
    this.webhookDeliveries = new Counter({
      name: "webhook_deliveries_total",
      help: "Webhook deliveries by webhook and outcome (accepted, duplicate, conflict, bad_signature, unknown, not_ready, invalid, error)",
      labelNames: ["webhook", "outcome"],
      registers,
    });
    this.resonatePushes = new Counter({
      name: "resonate_pushes_total",
      help: "Messages pushed to this process's push listener, by outcome (delivered, unauthorized, not_found, invalid, too_large)",
      labelNames: ["outcome"],
      registers,
    });
    this.functions = new FunctionMetrics(this.registry);
  }
}

/** Whether a scrape may read the metrics: no token configured lets everyone in, else `Bearer <token>`. */
export function mayScrape(token: string | undefined, authorization: string | null): boolean {
  return token === undefined || authorization === `Bearer ${token}`;
}
