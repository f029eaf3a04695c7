import { resolve } from "node:path";

/**
 * The chaos runs' workers: the pool every launcher uses (`spawnWorkerPool`
 * in harness/service.ts, restarting what dies), with this preload.
 */
export type { WorkerPool, WorkerSlot } from "../service.ts";

/** Probes, crash points and the fakes mounted with msw (see worker-preload.ts). */
export const CHAOS_PRELOAD = resolve(import.meta.dir, "worker-preload.ts");

/** How the chaos pool replaces a worker: soon after it dies, and a failed start again after the same pause. */
export const CHAOS_SUPERVISION = { restartDelayMs: 200 } as const;
