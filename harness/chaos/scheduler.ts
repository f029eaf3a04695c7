import type { Postgres } from "../postgres.ts";
import type { ResonateServer } from "../start-server.ts";
import type { WorkerPool } from "./pool.ts";
import { between, pick, seededRandom } from "./rng.ts";

export interface ChaosOptions {
  /** Same seed, same choices: a failing run can be replayed. */
  seed: number;
  pool: WorkerPool;
  /** Groups whose workers may be killed. Default: all in the pool. */
  groups?: string[];
  /** Pause between kills, drawn from [min, max] (ms). */
  intervalMs: [number, number];
  /** Stop killing after this many kills. */
  maxKills: number;
  /** Also kill (SIGKILL) and restart the Resonate server this many times, spread over the run. */
  server?: { handle: ResonateServer; restarts: number };
  /**
   * Also SIGKILL the real server's PostgreSQL this many times, spread over
   * the run, and start it again on its data after `downMs` (drawn from
   * [min, max]), the store away all that while.
   */
  postgres?: { handle: Postgres; restarts: number; downMs: [number, number] };
  /** Also kill and restart something else (e.g. the API) this many times. */
  extra?: { name: string; restarts: number; kill(): Promise<void>; restart(): Promise<void> };
  /** Called after each kill, with what was killed. */
  onKill?: (what: string) => void;
}

export interface Chaos extends AsyncDisposable {
  readonly kills: number;
  readonly serverRestarts: number;
  readonly postgresRestarts: number;
  readonly extraRestarts: number;
  /** Resolves when every planned kill and restart has happened (or `stop()` was called). */
  readonly done: Promise<void>;
  stop(): Promise<void>;
}

/**
 * SIGKILLs random workers of chosen groups at random moments (the pool
 * replaces them), and kills and restarts the server or another process at
 * moments spread over the planned kills. Seeded.
 */
export function startChaos(opts: ChaosOptions): Chaos {
  const rng = seededRandom(opts.seed);
  const groups = new Set(opts.groups ?? opts.pool.slots.map((s) => s.group));
  let kills = 0;
  let serverRestarts = 0;
  let extraRestarts = 0;
  let postgresRestarts = 0;
  let stopped = false;
  const every = (restarts: number) =>
    restarts > 0 ? Math.max(1, Math.floor(opts.maxKills / (restarts + 1))) : Infinity;
  const serverEvery = every(opts.server?.restarts ?? 0);
  const extraEvery = every(opts.extra?.restarts ?? 0);
  const postgresEvery = every(opts.postgres?.restarts ?? 0);

  const done = (async () => {
    while (!stopped && kills < opts.maxKills) {
      await Bun.sleep(between(rng, opts.intervalMs[0], opts.intervalMs[1]));
      if (stopped) break;
      const candidates = opts.pool.slots.filter((s) => groups.has(s.group) && s.current);
      const slot = candidates.length > 0 ? pick(rng, candidates) : undefined;
      if (!slot) continue;
      opts.pool.kill(slot);
      kills++;
      opts.onKill?.(`${slot.group}#${slot.index}`);
      if (opts.server && serverRestarts < opts.server.restarts && kills % serverEvery === 0) {
        await opts.server.handle.kill();
        await Bun.sleep(between(rng, 50, 500));
        await opts.server.handle.restart();
        serverRestarts++;
        opts.onKill?.("resonate-server");
      }
      if (opts.postgres && postgresRestarts < opts.postgres.restarts && kills % postgresEvery === 0) {
        await opts.postgres.handle.kill();
        opts.onKill?.("postgres");
        await Bun.sleep(between(rng, opts.postgres.downMs[0], opts.postgres.downMs[1]));
        await opts.postgres.handle.restart();
        postgresRestarts++;
      }
      if (opts.extra && extraRestarts < opts.extra.restarts && kills % extraEvery === 0) {
        await opts.extra.kill();
        await opts.extra.restart();
        extraRestarts++;
        opts.onKill?.(opts.extra.name);
      }
    }
  })();

  const chaos: Chaos = {
    get kills() {
      return kills;
    },
    get serverRestarts() {
      return serverRestarts;
    },
    get postgresRestarts() {
      return postgresRestarts;
    },
    get extraRestarts() {
      return extraRestarts;
    },
    done,
    async stop() {
      stopped = true;
      await done;
    },
    [Symbol.asyncDispose]: () => chaos.stop(),
  };
  return chaos;
}
