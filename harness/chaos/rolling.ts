import type { FailedRequests } from "./client.ts";
import type { WorkerPool } from "./pool.ts";
import { seededRandom } from "./rng.ts";
import type { StreamObservation } from "./streams.ts";

/** What a rolling restart restarts: the stack's API processes and its worker pool (`ChaosStack` is one). */
export interface RollingTarget {
  /** How many API processes share the API's port. */
  readonly apiProcesses: number;
  /** SIGTERM API process `index`, start a new one on the same port, resolve once it is ready. */
  restartApi(index: number, graceMs?: number): Promise<void>;
  /** Environment the API processes started from now on get (a build to roll to). */
  setApiEnv(env: Record<string, string>): void;
  readonly pool: WorkerPool;
}

/**
 * Rounds that deploy a build rather than restart the same one: round 1
 * rolls every process from `WORKFLOW_BUILD=current` to `next`, round 2
 * back, and so on. To `next`, the workers first (so a job of the new
 * version always finds one), then the API processes (which start it); back,
 * the API processes first (no new job of it), then, once `drained()` says
 * none of its jobs is pending, the workers.
 */
export interface DeployPlan {
  /** Resolves once no job of the next build's version is pending (what rolling the workers back waits for). */
  drained(): Promise<void>;
  /** The build every process runs when the first round begins. Default `current`: the first round rolls to `next`. */
  from?: "current" | "next";
}

export interface RollingOptions {
  target: RollingTarget;
  /** Rounds: in each, every API process and then every worker is restarted once. */
  rounds: number;
  /** Shuffles the order within each round (the API processes among themselves, then the workers); without it, in index order. */
  seed?: number;
  /**
   * How long each process has after SIGTERM before SIGKILL (ms). Default
   * the harness's (`SYSTEM_DEFAULTS.apiStopGraceMs`,
   * `POOL_DEFAULTS.stopGraceMs`): past the processes' own grace.
   */
  graceMs?: number;
  /** Wait for `begin()` before the first restart (e.g. until a workload is under way). Default false: begin at once. */
  held?: boolean;
  /** Deploy builds back and forth instead of restarting the same build (`--deploys`). */
  deploy?: DeployPlan;
  /** Told after each process is replaced and its successor ready, with its name (`api#0`, `db#1`) and how long it took (ms). */
  onRestart?: (what: string, ms: number) => void;
}

export interface RollingRestart extends AsyncDisposable {
  /** Rounds finished (`rolling_restarts`). */
  readonly rounds: number;
  /** Processes stopped and replaced so far, API and workers. */
  readonly processesRestarted: number;
  readonly apiRestarts: number;
  readonly workerRestarts: number;
  /** Each restart: what, and how long from SIGTERM to the successor's readiness (ms). */
  readonly restarts: readonly { what: string; ms: number }[];
  /** Processes a whole drill restarts: `rounds` × (API processes + workers). */
  readonly planned: number;
  /** Lets a `held` drill begin; does nothing after the first call, or without `held`. */
  begin(): void;
  /** Resolves once `count` processes have been restarted, or the drill is over (done, failed or stopped). */
  reached(count: number): Promise<void>;
  /** Resolves when every round is done (or `stop()` cut it short); rejects if a restart failed. */
  readonly done: Promise<void>;
  /** Restarts nothing more after the one under way; resolves once that one is done. */
  stop(): Promise<void>;
}

/** The order `items` are restarted in: as given, or shuffled by `rng`. */
function order<T>(items: readonly T[], rng: (() => number) | undefined): T[] {
  const out = [...items];
  if (!rng) return out;
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

/**
 * A deploy, `rounds` times over: every API process, then every worker of
 * every group, stopped with SIGTERM and replaced ONE AT A TIME, each
 * successor ready before the next process is stopped, as an orchestrator
 * rolls a deployment. Begins at once; `done` says when it is over.
 *
 *   await using rolling = startRollingRestarts({ target: stack, rounds: 1 });
 *   await rolling.done;
 *
 * With `held`, it waits for `begin()`: `spreadOver` begins it once a
 * workload is under way and spreads the rest of the workload over it.
 */
export function startRollingRestarts(opts: RollingOptions): RollingRestart {
  const rng = opts.seed === undefined ? undefined : seededRandom(opts.seed);
  const restarts: { what: string; ms: number }[] = [];
  let rounds = 0;
  let apiRestarts = 0;
  let workerRestarts = 0;
  let stopped = false;
  let over = false;
  // Resolved and replaced after every restart, so `reached` waiters look again.
  let changed = Promise.withResolvers<void>();
  const notify = () => {
    changed.resolve();
    changed = Promise.withResolvers<void>();
  };

  /** Runs one restart, then counts it and wakes whoever waits for the count. */
  const timed = async (what: string, kind: "api" | "worker", restart: () => Promise<void>) => {
    const started = Date.now();
    await restart();
    const ms = Date.now() - started;
    if (kind === "api") apiRestarts++;
    else workerRestarts++;
    restarts.push({ what, ms });
    opts.onRestart?.(what, ms);
    notify();
  };

  const held = Promise.withResolvers<void>();
  if (!opts.held) held.resolve();

  const done = (async () => {
    await held.promise;
    const apis = async () => {
      const indexes = Array.from({ length: opts.target.apiProcesses }, (_, i) => i);
      for (const index of order(indexes, rng)) {
        if (stopped) return;
        await timed(`api#${index}`, "api", () => opts.target.restartApi(index, opts.graceMs));
      }
    };
    const workers = async () => {
      for (const slot of order(opts.target.pool.slots, rng)) {
        if (stopped) return;
        await timed(`${slot.group}#${slot.index}`, "worker", () =>
          opts.target.pool.replace(slot, "stop", opts.graceMs),
        );
      }
    };
    for (let round = 0; round < opts.rounds && !stopped; round++) {
      const deploy = opts.deploy;
      if (!deploy) {
        await apis();
        await workers();
      } else if ((round + (deploy.from === "next" ? 1 : 0)) % 2 === 0) {
        opts.target.pool.setEnv({ WORKFLOW_BUILD: "next" });
        await workers();
        opts.target.setApiEnv({ WORKFLOW_BUILD: "next" });
        await apis();
      } else {
        opts.target.setApiEnv({ WORKFLOW_BUILD: "current" });
        await apis();
        if (stopped) return;
        await deploy.drained();
        opts.target.pool.setEnv({ WORKFLOW_BUILD: "current" });
        await workers();
      }
      if (stopped) return;
      rounds++;
    }
  })().finally(() => {
    over = true;
    notify();
  });
  // A failed restart rejects `done`; whoever awaits it sees why.
  done.catch(() => {});

  const rolling: RollingRestart = {
    get rounds() {
      return rounds;
    },
    get processesRestarted() {
      return apiRestarts + workerRestarts;
    },
    get apiRestarts() {
      return apiRestarts;
    },
    get workerRestarts() {
      return workerRestarts;
    },
    restarts,
    planned: opts.rounds * (opts.target.apiProcesses + opts.target.pool.slots.length),
    async reached(count) {
      while (!over && apiRestarts + workerRestarts < count) await changed.promise;
    },
    done,
    begin: () => held.resolve(),
    async stop() {
      stopped = true;
      held.resolve();
      await done.catch(() => {});
    },
    [Symbol.asyncDispose]: () => rolling.stop(),
  };
  return rolling;
}

/**
 * The drill's summary line: rounds, processes restarted, failed requests
 * and the event streams followed.
 */
export function rollingLine(
  rolling: Pick<RollingRestart, "rounds" | "processesRestarted">,
  failed: FailedRequests,
  streams: readonly StreamObservation[],
  violations: readonly unknown[],
): string {
  const reconnects = streams.reduce((n, s) => n + s.reconnects, 0);
  return (
    `rolling: ${rolling.rounds} rounds, ${rolling.processesRestarted} processes restarted, ` +
    `${failed.count} failed requests, ${streams.length} streams followed (${reconnects} reconnects), ` +
    `${violations.length} stream violations`
  );
}

/**
 * A workload's `pace` that spreads `count` workflows over a `held` drill:
 * the first `warmup` go at once; when the workload reaches the next one,
 * the drill begins (so its first restart meets workflows in flight and
 * event streams open), and the rest are spread evenly over the restarts,
 * so that the last restart, too, meets workflows being submitted.
 */
export function spreadOver(
  rolling: RollingRestart,
  count: number,
  warmup = Math.ceil(count / 5),
): (index: number) => Promise<void> {
  return async (index) => {
    if (index < warmup) return;
    rolling.begin();
    const share = (index - warmup) / Math.max(1, count - warmup);
    await rolling.reached(Math.floor(share * rolling.planned));
  };
}
