import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { type ChildProcess, freePort, spawnProcess } from "./process.ts";
import { waitFor } from "./wait-for.ts";

const SERVER_MAIN = resolve(import.meta.dir, "server/main.ts");

/** Options of `startResonateServer`; every one has a default. */
export interface ResonateServerOptions {
  /** TCP port; 0 (the default) lets the OS pick. A restart keeps the port first chosen. */
  port?: number;
  /** SQLite file; by default a file in a fresh temporary folder that `stop()` removes. */
  dbPath?: string;
  /** NDJSON trace of every protocol call (our server only). */
  tracePath?: string;
  /** Size at which a commit log segment is sealed and folded into the SQLite file (bytes, our server only). */
  segmentBytes?: number;
  /** When a commit is synced (`--synchronous`, our server only): `normal` (the default) or `full`. */
  synchronous?: "full" | "normal";
  /** `--tasks-retry-timeout`: delay before a pending task is offered again (ms). Default 30000. */
  retryTimeoutMs?: number;
  /** `--tasks-lease-timeout` (ms). Default 15000. An SDK task's lease is its client's `ttl`. */
  leaseTimeoutMs?: number;
  /** How often timeouts are checked (ms, our server only). Default 1000. */
  tickMs?: number;
  /** Accept `debug.*` requests. */
  debug?: boolean;
  /**
   * A real `resonate` binary to run instead of ours; defaults to the
   * `RESONATE_BIN` environment variable.
   */
  bin?: string | undefined;
}

/** A running Resonate server that a test started. */
export interface ResonateServer extends AsyncDisposable {
  /** Base URL for `new Resonate({url})` and `RESONATE_URL`. */
  readonly url: string;
  readonly port: number;
  readonly dbPath: string;
  readonly tracePath: string | undefined;
  /** The current server process. */
  readonly process: ChildProcess;
  /** SIGTERM, then SIGKILL after a grace period; removes the temporary folder it made. */
  stop(): Promise<void>;
  /** SIGKILL: no cleanup, no flush. The database file stays for `restart()`. */
  kill(): Promise<void>;
  /** Starts the server again on the same port and database file (stopping it first if it runs). */
  restart(): Promise<void>;
}

/**
 * Starts a Resonate server as a child process and waits until it answers.
 * Ours by default; the real one when `bin`/`RESONATE_BIN` names it.
 */
export async function startResonateServer(opts: ResonateServerOptions = {}): Promise<ResonateServer> {
  const bin = opts.bin ?? process.env.RESONATE_BIN;
  const tempDir = opts.dbPath ? undefined : mkdtempSync(join(tmpdir(), "resonate-server-"));
  const dbPath = opts.dbPath ?? join(tempDir as string, "resonate.db");
  let port = opts.port ?? 0;
  if (bin && port === 0) port = freePort();

  const launch = async (): Promise<ChildProcess> => {
    if (bin) {
      const child = spawnProcess({
        name: "resonate",
        cmd: [
          bin,
          "serve",
          "--server-port",
          String(port),
          "--storage-sqlite-path",
          dbPath,
          "--observability-metrics-port",
          String(freePort()),
          ...(opts.leaseTimeoutMs ? ["--tasks-lease-timeout", String(opts.leaseTimeoutMs)] : []),
          ...(opts.retryTimeoutMs ? ["--tasks-retry-timeout", String(opts.retryTimeoutMs)] : []),
        ],
      });
      try {
        await waitFor(
          async () => {
            if (child.killed) throw new Error("exited");
            return (await fetch(`http://127.0.0.1:${port}/health`)).ok;
          },
          { timeout: 20_000, message: `resonate binary answering on port ${port}` },
        );
      } catch (error) {
        await child.stop();
        throw error;
      }
      return child;
    }
    const child = spawnProcess({
      name: "resonate-server",
      cmd: [
        process.execPath,
        SERVER_MAIN,
        "--port",
        String(port),
        "--db",
        dbPath,
        ...(opts.tracePath ? ["--trace", opts.tracePath] : []),
        ...(opts.segmentBytes ? ["--log-segment-bytes", String(opts.segmentBytes)] : []),
        ...(opts.synchronous ? ["--synchronous", opts.synchronous] : []),
        ...(opts.retryTimeoutMs ? ["--tasks-retry-timeout", String(opts.retryTimeoutMs)] : []),
        ...(opts.leaseTimeoutMs ? ["--tasks-lease-timeout", String(opts.leaseTimeoutMs)] : []),
        ...(opts.tickMs ? ["--timeouts-poll-interval", String(opts.tickMs)] : []),
        ...(opts.debug ? ["--debug"] : []),
      ],
      readyLine: /^resonate server listening on http:\/\/[^:]+:(\d+)/,
    });
    try {
      const match = await child.ready;
      port = Number(match[1]);
    } catch (error) {
      await child.stop();
      throw error;
    }
    return child;
  };

  let current = await launch();

  const handle: ResonateServer = {
    get url() {
      return `http://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    dbPath,
    tracePath: opts.tracePath,
    get process() {
      return current;
    },
    async stop() {
      await current.stop();
      if (tempDir) rmSync(tempDir, { recursive: true, force: true });
    },
    async kill() {
      current.kill("SIGKILL");
      await current.exited;
    },
    async restart() {
      await current.stop();
      // Retried: the old socket may take a moment to be released after a SIGKILL.
      current = await waitFor(() => launch(), {
        timeout: 15_000,
        interval: 100,
        message: `restart on port ${port}`,
      });
    },
    async [Symbol.asyncDispose]() {
      await handle.stop();
    },
  };
  return handle;
}
