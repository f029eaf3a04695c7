import type { Resonate } from "@resonatehq/sdk";
import { BoundedMap } from "../core/bounded-map.ts";
import type { Config, Targets } from "../core/config.ts";
import { cancelRequested } from "../core/jobs.ts";
import { type Logger, silentLogger } from "../core/observability/logger.ts";
import { ApiMetrics } from "../core/observability/metrics.ts";
import type { DurableFunction } from "../core/resonate/contract.ts";
import { isNotFound } from "../core/resonate/durable.ts";
import { type PromiseSearch, PromiseSearchError } from "../core/resonate/search.ts";
import { notFound } from "./errors.ts";
import { invocationObserver } from "./observability/invocations.ts";
import { touchPromise } from "./observability/request-context.ts";
import { Launcher } from "./resonate/launcher.ts";

/** What every feature's service functions get: the Resonate client, config, where functions run, a clock, caches, metrics and the logger. */
export interface Deps {
  resonate: Resonate;
  launcher: Launcher;
  config: Config;
  targets: Targets;
  now: () => number;
  /** When a job starts, from `now` (ms): later for each job this process starts, so its jobs list in the order they started. */
  startClock: () => number;
  /** Approval promise ids by order, once the workflow has registered them (they never change). */
  approvalIds: BoundedMap<string, string>;
  /** This app's metrics, on a registry of its own (`GET /metrics`). */
  metrics: ApiMetrics;
  log: Logger;
  /** `promise.search` on the Resonate server (`GET /jobs`); the in-process network has none. */
  search: PromiseSearch;
  /** Wakes job event streams when a cancel is asked of the job, through this process or another. */
  jobSignals: JobSignals;
  /**
   * Aborts when this process begins to stop (SIGTERM): readiness answers
   * `draining`, waits answer with things as they are, event streams tell
   * their clients to reconnect elsewhere.
   */
  draining: AbortSignal;
}

/** `metrics` defaults to a fresh registry, `log` to a logger that writes nothing (the entrypoint hands in the real one). */
export function makeDeps(
  resonate: Resonate,
  config: Config,
  targets: Targets,
  now: () => number = Date.now,
  observability: { metrics?: ApiMetrics; log?: Logger; search?: PromiseSearch; draining?: AbortSignal } = {},
): Deps {
  const metrics = observability.metrics ?? new ApiMetrics();
  return {
    resonate,
    launcher: new Launcher(resonate, config.colocated, invocationObserver(metrics)),
    config,
    targets,
    now,
    startClock: increasing(now),
    approvalIds: new BoundedMap(100_000),
    metrics,
    log: observability.log ?? silentLogger(),
    search: observability.search ?? noSearch,
    jobSignals: new JobSignals((id) => cancelRequested(resonate.promises, id)),
    draining: observability.draining ?? new AbortController().signal,
  };
}

/** `now`, or 1 ms after the last time it returned when `now` has not moved past it. */
function increasing(now: () => number): () => number {
  let last = 0;
  return () => {
    last = Math.max(now(), last + 1);
    return last;
  };
}

/** What a client of the in-process network gets: no search, as the SDK's local network answers. */
const noSearch: PromiseSearch = async () => {
  throw new PromiseSearchError(501, "this Resonate network has no promise.search");
};

/** How often a job with a stream waiting on it is asked whether a cancel was recorded through another process (ms). */
export const CANCEL_POLL_MS = 500;

/**
 * Wake-ups by job id, for the streams of a job's events: `wait(id, signal)`
 * resolves at the next `notify(id)`, once `canceled(id)` says a cancel was
 * recorded, or when `signal` aborts. A cancel asked through this process
 * notifies at once; one asked through another API process is found by
 * asking, every `CANCEL_POLL_MS` while a stream waits on the job (one
 * question per job, however many streams wait on it), since the cancel
 * record is a promise that a stream cannot subscribe to before it exists.
 */
export class JobSignals {
  readonly #waiting = new Map<string, Set<() => void>>();
  readonly #polls = new Map<string, { timer?: Timer }>();
  readonly #canceled: (id: string) => Promise<boolean>;
  readonly #pollMs: number;

  constructor(canceled: (id: string) => Promise<boolean> = async () => false, pollMs = CANCEL_POLL_MS) {
    this.#canceled = canceled;
    this.#pollMs = pollMs;
  }

  notify(id: string): void {
    const waiters = this.#waiting.get(id);
    this.#stopPolling(id);
    if (!waiters) return;
    this.#waiting.delete(id);
    for (const wake of waiters) wake();
  }

  wait(id: string, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const waiters = this.#waiting.get(id) ?? new Set();
      this.#waiting.set(id, waiters);
      const wake = () => {
        signal.removeEventListener("abort", wake);
        waiters.delete(wake);
        if (waiters.size === 0 && this.#waiting.get(id) === waiters) {
          this.#waiting.delete(id);
          this.#stopPolling(id);
        }
        resolve();
      };
      waiters.add(wake);
      signal.addEventListener("abort", wake, { once: true });
      if (signal.aborted) wake();
      else this.#poll(id);
    });
  }

  /** Ids with a waiter (for tests: nothing is left after a stream ends). */
  get size(): number {
    return this.#waiting.size;
  }

  /** Ids being asked about (for tests: no question goes on once nothing waits). */
  get polling(): number {
    return this.#polls.size;
  }

  #poll(id: string): void {
    if (this.#polls.has(id)) return;
    const poll: { timer?: Timer } = {};
    const ask = async () => {
      let canceled = false;
      try {
        canceled = await this.#canceled(id);
      } catch {
        // The Resonate server did not answer: asked again at the next turn.
      }
      if (this.#polls.get(id) !== poll) return;
      if (canceled) this.notify(id);
      else poll.timer = setTimeout(ask, this.#pollMs);
    };
    poll.timer = setTimeout(ask, this.#pollMs);
    this.#polls.set(id, poll);
  }

  #stopPolling(id: string): void {
    clearTimeout(this.#polls.get(id)?.timer);
    this.#polls.delete(id);
  }
}

export type PromiseRecord = Awaited<ReturnType<Resonate["promises"]["get"]>>;

/**
 * Asks the db group in a short durable RPC of its own (`lookup:<what>:<uuid>`,
 * 10 s timeout) and waits for the answer: a read or a small write the API
 * needs before it answers.
 */
export async function askDb<Args extends unknown[], Result>(
  deps: Deps,
  fn: DurableFunction<Args, Result>,
  what: string,
  args: Args,
): Promise<Result> {
  const handle = await deps.launcher.begin(fn, `lookup:${what}:${crypto.randomUUID()}`, args, {
    target: deps.targets.db,
    timeout: 10_000,
  });
  return handle.result();
}

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
