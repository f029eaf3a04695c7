import { resolve } from "node:path";
import { type ChildProcess, spawnProcess } from "./process.ts";

const ROOT = resolve(import.meta.dir, "..");
const WORKER_MAIN = resolve(ROOT, "workers/main.ts");

/** The runtimes the API runs on. */
export const API_RUNTIMES = ["bun", "deno"] as const;
export type ApiRuntime = (typeof API_RUNTIMES)[number];

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
    readyLine: /^api listening on (http:\/\/\S+)/,
  });
  let url: string;
  try {
    url = (await child.ready)[1] as string;
  } catch (error) {
    await child.stop();
    throw error;
  }
  return Object.assign(child, { url, runtime });
}
