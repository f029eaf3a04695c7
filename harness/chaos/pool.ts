import { resolve } from "node:path";
import type { ChildProcess } from "../process.ts";
import { spawnWorker } from "../service.ts";

const PRELOAD = resolve(import.meta.dir, "worker-preload.ts");

export interface WorkerPoolOptions {
  /** Processes per group, e.g. `{ "order-workers": 2, db: 1 }`. */
  groups: Record<string, number>;
  /** Environment of every worker (RESONATE_URL, …). */
  env: Record<string, string | undefined>;
  /** Extra environment per group. */
  groupEnv?: Record<string, Record<string, string>>;
  /** Load the chaos preload (probes, crash points, msw fakes). Default true. */
  preload?: boolean;
  /** Pause before a dead worker's replacement starts (ms). Default 200. */
  restartDelayMs?: number;
}

/** One place in the pool: a group and whichever process holds it now. */
export interface WorkerSlot {
  readonly group: string;
  readonly index: number;
  readonly current: ChildProcess | undefined;
  /** Processes this slot has started so far. */
  readonly generations: number;
}

/** Workers per group that are replaced when they die, however they die. */
export interface WorkerPool extends AsyncDisposable {
  readonly slots: readonly WorkerSlot[];
  /** Every process the pool has started, dead or alive. */
  readonly processes: readonly ChildProcess[];
  /** SIGKILLs the process in `slot`; its replacement starts after the restart delay. */
  kill(slot: WorkerSlot): void;
  /** Resolves when every slot has a ready process. */
  ready(): Promise<void>;
  stop(): Promise<void>;
}

export async function startWorkerPool(opts: WorkerPoolOptions): Promise<WorkerPool> {
  const restartDelayMs = opts.restartDelayMs ?? 200;
  const bunArgs = opts.preload === false ? [] : ["--preload", PRELOAD];
  const processes: ChildProcess[] = [];
  let stopping = false;

  interface MutableSlot {
    group: string;
    index: number;
    current: ChildProcess | undefined;
    generations: number;
    starting: Promise<void> | undefined;
  }
  const slots: MutableSlot[] = Object.entries(opts.groups).flatMap(([group, count]) =>
    Array.from({ length: count }, (_, index) => ({
      group,
      index,
      current: undefined,
      generations: 0,
      starting: undefined,
    })),
  );

  const start = (slot: MutableSlot): Promise<void> => {
    slot.starting = (async () => {
      for (;;) {
        if (stopping) return;
        try {
          const [child] = (await spawnWorker({
            group: slot.group,
            env: { ...opts.env, ...opts.groupEnv?.[slot.group] },
            bunArgs,
          })) as [ChildProcess];
          processes.push(child);
          slot.generations++;
          if (stopping) {
            await child.stop();
            return;
          }
          slot.current = child;
          child.exited.then(async () => {
            if (slot.current === child) slot.current = undefined;
            if (stopping) return;
            await Bun.sleep(restartDelayMs);
            if (!stopping) void start(slot);
          });
          return;
        } catch (error) {
          // A worker killed while starting (or a start that failed) is simply tried again.
          if (stopping) return;
          if (process.env.DEBUG) console.error(`pool: ${slot.group}#${slot.index} failed to start:`, error);
          await Bun.sleep(restartDelayMs);
        }
      }
    })();
    return slot.starting;
  };

  await Promise.all(slots.map(start));

  const pool: WorkerPool = {
    slots,
    processes,
    kill(slot) {
      slot.current?.kill("SIGKILL");
    },
    async ready() {
      while (slots.some((s) => !s.current)) {
        await Promise.all(slots.map((s) => s.starting));
        if (slots.some((s) => !s.current)) await Bun.sleep(50);
      }
    },
    async stop() {
      stopping = true;
      await Promise.all(slots.map((s) => s.starting));
      await Promise.all(processes.map((p) => p.stop()));
    },
    [Symbol.asyncDispose]: () => pool.stop(),
  };
  return pool;
}
