import { resolve } from "node:path";
import { API_RUNTIMES, type ApiRuntime } from "../core/settings.ts";
import { type ChildProcess, spawnProcess } from "./process.ts";

const ROOT = resolve(import.meta.dir, "..");
const WORKER_MAIN = resolve(ROOT, "workers/main.ts");

export { API_RUNTIMES, type ApiRuntime };

/** Whether `value` names one of `API_RUNTIMES` (for launchers that read it from a flag or a variable). */
export const isApiRuntime = (value: unknown): value is ApiRuntime =>
  (API_RUNTIMES as readonly unknown[]).includes(value);

/**
 * How each runtime starts the API: the command up to its own options, the
 * entrypoint, and what it needs in its environment. Deno is the binary npm
 * installed (not a wrapper script, so the handle's pid is Deno's own), run
 * from the repo root, whose `deno.json` resolves bare imports from
 * node_modules.
 */
const API_COMMANDS: Record<ApiRuntime, { cmd: string[]; main: string; env: Record<string, string> }> = {
  bun: { cmd: [process.execPath], main: resolve(ROOT, "src/main.ts"), env: {} },
  deno: {
    cmd: [resolve(ROOT, "node_modules/.bin/deno"), "run", "--allow-all"],
    main: resolve(ROOT, "src/main.deno.ts"),
    // No look-up of newer releases from a test or a launcher.
    env: { DENO_NO_UPDATE_CHECK: "1" },
  },
};

export interface SpawnWorkerOptions {
  /** Worker group: order-workers, pricing-workers, db or business. */
  group: string;
  /** How many processes to start. Default 1. */
  count?: number;
  /** Environment for the processes (RESONATE_URL, WEBHOOK_SECRET, …), over this process's. */
  env?: Record<string, string | undefined>;
  /** Extra `bun` arguments before the script, e.g. `["--preload", file]`. */
  bunArgs?: string[];
}

/** A worker process the harness started. */
export interface WorkerProcess extends ChildProcess {
  /**
   * Where it serves its metrics (`http://…/metrics`), from the `worker
   * metrics` line it prints before it is ready when METRICS_PORT is set;
   * undefined without a metrics port, or before it is ready.
   */
  readonly metricsUrl: string | undefined;
}

const METRICS_LINE = /^worker metrics \S+ \S+ (\S+)$/m;

/** One worker process named `<group>#<index>`, ready once it prints `worker ready` (its message stream is open then). */
function launchWorker(opts: {
  group: string;
  index: number;
  env: Record<string, string | undefined> | undefined;
  bunArgs: string[] | undefined;
}): WorkerProcess {
  const child = spawnProcess({
    name: `${opts.group}#${opts.index}`,
    cmd: [process.execPath, ...(opts.bunArgs ?? []), WORKER_MAIN, opts.group],
    env: { WORKER_PID: `${opts.group}-${opts.index}-${crypto.randomUUID().slice(0, 8)}`, ...opts.env },
    cwd: ROOT,
    readyLine: /^worker ready /,
  });
  let metricsUrl: string | undefined;
  // Read at readiness, while the line is surely still in the output the handle keeps.
  child.ready.then(
    () => {
      metricsUrl = METRICS_LINE.exec(child.output())?.[1];
    },
    () => {},
  );
  return Object.defineProperty(child, "metricsUrl", {
    get: () => metricsUrl,
    enumerable: true,
  }) as WorkerProcess;
}

/** Starts `count` worker processes of one group and waits until each says it is ready. */
export async function spawnWorker(opts: SpawnWorkerOptions): Promise<WorkerProcess[]> {
  const count = opts.count ?? 1;
  const children = Array.from({ length: count }, (_, index) =>
    launchWorker({ group: opts.group, index, env: opts.env, bunArgs: opts.bunArgs }),
  );
  try {
    await Promise.all(children.map((c) => c.ready));
  } catch (error) {
    await Promise.all(children.map((c) => c.stop()));
    throw error;
  }
  return children;
}

/** Defaults of `spawnWorkerPool`. */
export const POOL_DEFAULTS = {
  /** Pause before a dead worker's replacement starts, and before a failed start is tried again (ms). */
  restartDelayMs: 200,
  /** How long `replace(slot, "stop")` waits after SIGTERM before SIGKILL (ms): past a worker's own SHUTDOWN_GRACE_MS default. */
  stopGraceMs: 15_000,
} as const;

export interface WorkerPoolOptions {
  /** Processes per group, e.g. `{ "order-workers": 2, db: 1 }`. */
  groups: Readonly<Record<string, number>>;
  /** Environment of every worker (RESONATE_URL, …), over this process's. */
  env?: Record<string, string | undefined>;
  /** Extra environment per group, over `env`. */
  groupEnv?: Readonly<Record<string, Record<string, string | undefined>>>;
  /** Extra `bun` arguments before the script, e.g. `["--preload", file]`. */
  bunArgs?: string[];
  /**
   * Replace a worker that dies, however it dies, and try a failed start
   * again. Default false: a dead worker stays dead, and a failed start
   * makes `ready()` reject.
   */
  restart?: boolean;
  /** Pause before a replacement starts, and before the first retry of a failed start (ms). Default `POOL_DEFAULTS`'. */
  restartDelayMs?: number;
  /** Each further failed start of a slot doubles the pause, up to this (ms). Default `restartDelayMs`: no growth. */
  maxRestartDelayMs?: number;
  /**
   * Told when a worker is ready, fails to start, or dies: a restarting pool
   * tells of a death once the pause before the replacement is over, and
   * never of one while it stops.
   */
  onEvent?: (event: WorkerEvent) => void;
}

/** What happened to a worker of a pool. */
export type WorkerEvent =
  | { type: "worker-ready"; slot: WorkerSlot; process: WorkerProcess }
  | { type: "worker-exited"; slot: WorkerSlot; process: WorkerProcess; code: number; restarting: boolean }
  | { type: "worker-start-failed"; slot: WorkerSlot; error: Error; retryInMs: number | undefined };

/** One place in a pool: a group and whichever process holds it now. */
export interface WorkerSlot {
  readonly group: string;
  readonly index: number;
  /** The slot's ready process; undefined while it is dead or starting. */
  readonly current: WorkerProcess | undefined;
  /** Processes this slot has had ready so far. */
  readonly generations: number;
}

/** Worker processes per group, replaced when they die if the pool restarts them. */
export interface WorkerPool extends AsyncDisposable {
  readonly slots: readonly WorkerSlot[];
  /** Every process that became ready in the pool, dead or alive. */
  readonly processes: readonly WorkerProcess[];
  /** The ready process of each slot that has one, in slot order. */
  live(): WorkerProcess[];
  /** SIGKILLs the process in `slot`; a restarting pool starts its replacement after the restart delay. */
  kill(slot: WorkerSlot): void;
  /**
   * Ends the process in `slot` and starts its replacement at once; resolves
   * when that one is ready. `"kill"` (the default) SIGKILLs it; `"stop"`
   * stops it as an orchestrator does (SIGTERM, and SIGKILL only after
   * `graceMs`, default `POOL_DEFAULTS.stopGraceMs`), so it finishes or hands
   * back its tasks first.
   */
  replace(slot: WorkerSlot, how?: "kill" | "stop", graceMs?: number): Promise<void>;
  /** Resolves when every slot has a ready process; rejects when one never will. */
  ready(): Promise<void>;
  /** Environment every process started from now on gets, over the pool's own (a new build for the next replacements). */
  setEnv(env: Record<string, string | undefined>): void;
  /**
   * Starts no more processes (a worker that dies stays dead, one still
   * starting is stopped once ready) and reports no more deaths. `stop()`
   * begins with it; whoever stops other processes before the pool calls it
   * first, so that workers which got the same Ctrl-C are not replaced.
   */
  stopStarting(): void;
  /** Stops every process of the pool (SIGTERM, then SIGKILL) and starts no more. */
  stop(): Promise<void>;
}

interface PoolSlot extends WorkerSlot {
  current: WorkerProcess | undefined;
  generations: number;
  /** A start (or the pause before one) is under way. */
  filling: boolean;
  /** The process `replace()` killed, whose death the pool leaves to `replace()`. */
  replacing: WorkerProcess | undefined;
}

/**
 * Starts the workers of `groups` and returns at once; `ready()` says when
 * they are up. The one supervisor of worker processes: the launcher, the
 * chaos runs and the load tool all keep their workers with it.
 */
export function spawnWorkerPool(opts: WorkerPoolOptions): WorkerPool {
  const restart = opts.restart ?? false;
  const firstDelayMs = opts.restartDelayMs ?? POOL_DEFAULTS.restartDelayMs;
  const maxDelayMs = Math.max(firstDelayMs, opts.maxRestartDelayMs ?? firstDelayMs);
  const slots: PoolSlot[] = Object.entries(opts.groups).flatMap(([group, count]) =>
    Array.from({ length: count }, (_, index) => ({
      group,
      index,
      current: undefined,
      generations: 0,
      filling: false,
      replacing: undefined,
    })),
  );
  const processes: WorkerProcess[] = [];
  /** Set by `setEnv`: over the pool's environment for every later start. */
  let laterEnv: Record<string, string | undefined> = {};
  /** Spawned and not yet exited, ready or not: what `stop()` stops. */
  const alive = new Set<ChildProcess>();
  const fills = new Set<Promise<void>>();
  let stopping = false;
  let stopped: Promise<void> | undefined;
  const stopSignal = Promise.withResolvers<void>();
  let failure: Error | undefined;
  // Resolved and replaced on every change of a slot, so waiters look again.
  let changed = Promise.withResolvers<void>();
  const notify = () => {
    changed.resolve();
    changed = Promise.withResolvers<void>();
  };
  const pause = (ms: number) => Promise.race([Bun.sleep(ms), stopSignal.promise]);

  const onExit = (slot: PoolSlot, child: WorkerProcess, code: number) => {
    if (slot.current === child) slot.current = undefined;
    notify();
    if (stopping) return;
    const replaced = slot.replacing === child;
    const exited: WorkerEvent = {
      type: "worker-exited",
      slot,
      process: child,
      code,
      restarting: restart || replaced,
    };
    if (!restart || replaced) {
      opts.onEvent?.(exited);
      return;
    }
    // Told, and replaced, only after the pause: a Ctrl-C that reached the worker reaches whoever stops the pool meanwhile.
    fill(slot, { ms: firstDelayMs, onResume: () => opts.onEvent?.(exited) });
  };

  /**
   * Starts processes in `slot` until one is ready, or, in a pool that does
   * not restart, one failed; first pauses, if asked, and calls `onResume`
   * if the pool is not stopping by the end of the pause.
   */
  const fill = (slot: PoolSlot, first?: { ms: number; onResume: () => void }): Promise<void> => {
    slot.filling = true;
    const run = (async () => {
      let delayMs = firstDelayMs;
      if (first) {
        await pause(first.ms);
        if (!stopping) first.onResume();
      }
      while (!stopping) {
        const child = launchWorker({
          group: slot.group,
          index: slot.index,
          env: { ...opts.env, ...opts.groupEnv?.[slot.group], ...laterEnv },
          bunArgs: opts.bunArgs,
        });
        alive.add(child);
        void child.exited.then(() => alive.delete(child));
        try {
          await child.ready;
        } catch (error) {
          await child.stop();
          if (stopping) break;
          if (!restart) {
            failure ??= error as Error;
            break;
          }
          opts.onEvent?.({ type: "worker-start-failed", slot, error: error as Error, retryInMs: delayMs });
          await pause(delayMs);
          delayMs = Math.min(delayMs * 2, maxDelayMs);
          continue;
        }
        if (stopping) {
          await child.stop();
          break;
        }
        processes.push(child);
        slot.generations++;
        slot.current = child;
        opts.onEvent?.({ type: "worker-ready", slot, process: child });
        void child.exited.then((code) => onExit(slot, child, code));
        break;
      }
      slot.filling = false;
      notify();
    })();
    fills.add(run);
    void run.finally(() => fills.delete(run));
    return run;
  };

  for (const slot of slots) fill(slot);

  const pool: WorkerPool = {
    slots,
    processes,
    live: () => slots.flatMap((s) => (s.current ? [s.current] : [])),
    kill(slot) {
      slot.current?.kill("SIGKILL");
    },
    async replace(slot, how = "kill", graceMs = POOL_DEFAULTS.stopGraceMs) {
      const s = slot as PoolSlot;
      const old = s.current;
      if (old) {
        s.replacing = old;
        if (how === "stop") await old.stop(graceMs);
        else {
          old.kill("SIGKILL");
          await old.exited;
        }
      }
      if (!s.filling && !s.current && !stopping) fill(s);
      while (s.filling) await changed.promise;
      if (!s.current && !stopping)
        throw failure ?? new Error(`worker ${s.group}#${s.index} did not start again`);
    },
    async ready() {
      for (;;) {
        if (failure) throw failure;
        if (stopping || slots.every((s) => s.current)) return;
        const dead = slots.find((s) => !s.current && !s.filling);
        if (dead) throw new Error(`worker ${dead.group}#${dead.index} exited and is not restarted`);
        await changed.promise;
      }
    },
    setEnv(env) {
      laterEnv = { ...laterEnv, ...env };
    },
    stopStarting() {
      stopping = true;
      stopSignal.resolve();
      notify();
    },
    stop() {
      stopped ??= (async () => {
        pool.stopStarting();
        await Promise.all([...alive].map((c) => c.stop()));
        await Promise.all([...fills]);
      })();
      return stopped;
    },
    [Symbol.asyncDispose]: () => pool.stop(),
  };
  return pool;
}

export interface SpawnApiOptions {
  /** The runtime the API runs on: `bun` (`src/main.ts`, the default) or `deno` (`src/main.deno.ts`). */
  runtime?: ApiRuntime;
  /** Environment for the process (RESONATE_URL, WEBHOOK_SECRET, MODE, …), over this process's. */
  env?: Record<string, string | undefined>;
  /** Extra arguments for the runtime, before the script (`bun <args> src/main.ts`, `deno run --allow-all <args> …`). */
  runtimeArgs?: string[];
}

/** A running API process, its base URL and the runtime it runs on. */
export interface ApiProcess extends ChildProcess {
  readonly url: string;
  readonly runtime: ApiRuntime;
  /** Its Resonate pid, from its ready line. */
  readonly resonatePid: string;
  /** Where it alone serves its metrics (`http://…/metrics`), with METRICS_PORT set; else undefined. */
  readonly metricsUrl: string | undefined;
}

/**
 * Starts the API process on `runtime` (Bun by default); PORT defaults to 0,
 * and the handle says which port it got. Ready when it prints
 * `api listening on <url>`.
 */
export async function spawnApi(opts: SpawnApiOptions = {}): Promise<ApiProcess> {
  const runtime = opts.runtime ?? "bun";
  if (!isApiRuntime(runtime))
    throw new Error(`spawnApi: runtime must be one of ${API_RUNTIMES.join(", ")}, got "${runtime}"`);
  const command = API_COMMANDS[runtime];
  const child = spawnProcess({
    name: "api",
    cmd: [...command.cmd, ...(opts.runtimeArgs ?? []), command.main],
    env: { PORT: "0", ...command.env, ...opts.env },
    cwd: ROOT,
    readyLine: /^api listening on (http:\/\/\S+) .*pid (\S+)\)$/,
  });
  let ready: RegExpMatchArray;
  try {
    ready = await child.ready;
  } catch (error) {
    await child.stop();
    throw error;
  }
  const metricsUrl = /^api metrics \S+ (\S+)$/m.exec(child.output())?.[1];
  return Object.assign(child, {
    url: ready[1] as string,
    resonatePid: ready[2] as string,
    metricsUrl,
    runtime,
  });
}
