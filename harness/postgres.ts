import { chmodSync, chownSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ChildProcess, freePort, spawnProcess } from "./process.ts";

/** Where Debian puts PostgreSQL's server programs, newest first. */
function findBin(name: string): string | undefined {
  const fromPath = Bun.which(name);
  if (fromPath) return fromPath;
  for (const version of ["17", "16", "15", "14", "13"]) {
    const path = `/usr/lib/postgresql/${version}/bin/${name}`;
    if (existsSync(path)) return path;
  }
  return undefined;
}

export interface Postgres extends AsyncDisposable {
  /** `postgres://app@127.0.0.1:<port>/app` */
  readonly url: string;
  readonly process: ChildProcess;
  stop(): Promise<void>;
}

/**
 * A throwaway PostgreSQL server (Debian's `postgresql` package) in a temporary
 * folder on a free port, trust auth for user `app`. Run as root, the server
 * runs as the `postgres` user, as PostgreSQL requires.
 */
export async function startPostgres(): Promise<Postgres> {
  const initdb = findBin("initdb");
  const postgres = findBin("postgres");
  if (!initdb || !postgres) {
    throw new Error(
      "PostgreSQL server programs not found: install Debian's postgresql package (.ci/run does)",
    );
  }
  const dir = mkdtempSync(join(tmpdir(), "pg-"));
  const asRoot = process.getuid?.() === 0;
  const run = (cmd: string[]) => (asRoot ? ["runuser", "-u", "postgres", "--", ...cmd] : cmd);
  if (asRoot) {
    const { uid, gid } = await Bun.$`id -u postgres && id -g postgres`.text().then((t) => {
      const [u, g] = t.trim().split("\n").map(Number);
      return { uid: u as number, gid: g as number };
    });
    chownSync(dir, uid, gid);
    chmodSync(dir, 0o700);
  }
  const data = join(dir, "data");
  const init = Bun.spawnSync(run([initdb, "-D", data, "-A", "trust", "-U", "app", "--no-sync"]), {
    stderr: "pipe",
    stdout: "pipe",
  });
  if (init.exitCode !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed: ${init.stderr.toString()}`);
  }
  const port = freePort();
  const child = spawnProcess({
    name: "postgres",
    cmd: run([postgres, "-D", data, "-p", String(port), "-h", "127.0.0.1", "-k", dir, "-c", "fsync=off"]),
    readyLine: /database system is ready to accept connections/,
  });
  const stop = async () => {
    await child.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await child.ready;
    const created = Bun.spawnSync(
      run([findBin("createdb") ?? "createdb", "-h", "127.0.0.1", "-p", String(port), "-U", "app", "app"]),
      { stderr: "pipe" },
    );
    if (created.exitCode !== 0) throw new Error(`createdb failed: ${created.stderr.toString()}`);
  } catch (error) {
    await stop();
    throw error;
  }
  return { url: `postgres://app@127.0.0.1:${port}/app`, process: child, stop, [Symbol.asyncDispose]: stop };
}
