import { resolve } from "node:path";
import { type ChildProcess, spawnProcess } from "./process.ts";

const ROOT = resolve(import.meta.dir, "..");
const WORKER_MAIN = resolve(ROOT, "workers/main.ts");
const API_MAIN = resolve(ROOT, "src/main.ts");

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

/** Starts `count` worker processes of one group and waits until each says it is ready. */
export async function spawnWorker(opts: SpawnWorkerOptions): Promise<ChildProcess[]> {
  const count = opts.count ?? 1;
  const children = Array.from({ length: count }, (_, i) =>
    spawnProcess({
      name: `${opts.group}#${i}`,
      cmd: [process.execPath, ...(opts.bunArgs ?? []), WORKER_MAIN, opts.group],
      env: { WORKER_PID: `${opts.group}-${i}-${crypto.randomUUID().slice(0, 8)}`, ...opts.env },
      cwd: ROOT,
      readyLine: /^worker ready /,
    }),
  );
  try {
    await Promise.all(children.map((c) => c.ready));
  } catch (error) {
    await Promise.all(children.map((c) => c.stop()));
    throw error;
  }
  return children;
}

/** A running API process and its base URL. */
export interface ApiProcess extends ChildProcess {
  readonly url: string;
}

/** Starts the API process (`src/main.ts`); PORT defaults to 0, and the handle says which port it got. */
export async function spawnApi(
  opts: { env?: Record<string, string | undefined>; bunArgs?: string[] } = {},
): Promise<ApiProcess> {
  const child = spawnProcess({
    name: "api",
    cmd: [process.execPath, ...(opts.bunArgs ?? []), API_MAIN],
    env: { PORT: "0", ...opts.env },
    cwd: ROOT,
    readyLine: /^api listening on (http:\/\/\S+)/,
  });
  let url: string;
  try {
    url = (await child.ready)[1] as string;
  } catch (error) {
    await child.stop();
    throw error;
  }
  return Object.assign(child, { url });
}
