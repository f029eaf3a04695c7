import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { STORAGES, type Storage } from "../core/settings.ts";
import { type Postgres, startPostgres } from "./postgres.ts";
import { type ChildProcess, dieWithParent, freePort, spawnProcess } from "./process.ts";
import { tempDir } from "./scope.ts";
import { waitFor } from "./wait-for.ts";

const SERVER_MAIN = resolve(import.meta.dir, "resonate-server/main.ts");

/**
 * How often the server looks for messages to send and for timeouts that
 * expired, as this project runs it (both servers take these flags with the
 * same meaning). The real server's defaults are 100 ms and 1000 ms: at
 * 100 ms every message (an RPC's `execute`, a result's `unblock`) waits up
 * to 100 ms for the delivery loop, which made one quote at a time take
 * p50 203 ms there. 1 ms keeps a hop at about a millisecond.
 */
export const SERVER_TUNING = {
  /** `--messages-poll-interval` (ms). */
  messagesPollIntervalMs: 1,
  /**
   * `--messages-poll-interval` of the real server on PostgreSQL (ms). Each
   * poll is a query: at 1 ms, 300 quotes/s on 2 cores overloaded it (p50
   * 622 ms, 292 of 3000 shed); at 2, 5, 10 and 20 ms p50 was 167, 76, 353
   * and 332 ms (docs/performance.md, 2026-12-07).
   */
  postgresMessagesPollIntervalMs: 5,
  /** `--timeouts-poll-interval` (ms). */
  timeoutsPollIntervalMs: 1_000,
  /**
   * `--transports-http-push-connect-timeout` and `-request-timeout` (ms).
   * The real server sends pushes one after another in its delivery loop, so
   * a push to an address nobody answers holds back every message behind it
   * for this long; its defaults are 10 s and 180 s. An API answers a push at
   * once (`src/resonate/push.ts`).
   */
  pushConnectTimeoutMs: 1_000,
  pushRequestTimeoutMs: 2_000,
} as const;

/** The `--messages-poll-interval` this project gives a server on `storage` (ms). */
export function messagesPollFor(storage: Storage): number {
  return storage === "postgres"
    ? SERVER_TUNING.postgresMessagesPollIntervalMs
    : SERVER_TUNING.messagesPollIntervalMs;
}

/** Which server `startResonateServer` runs: ours, or the real binary that `RESONATE_BIN` names. */
export type ServerKind = "harness" | "real";

/** The server this process's tests and tools run by default. */
export function defaultServerKind(): ServerKind {
  return process.env.RESONATE_BIN ? "real" : "harness";
}

/** Where the real server keeps its promises: a SQLite file, or a PostgreSQL database. Ours has SQLite only. */
export { STORAGES, type Storage };

/** The store the real server runs on by default here: `RESONATE_STORAGE` (`sqlite` when unset). */
export function defaultStorage(): Storage {
  const value = process.env.RESONATE_STORAGE || "sqlite";
  if (!(STORAGES as readonly string[]).includes(value))
    throw new Error(`RESONATE_STORAGE must be one of ${STORAGES.join(", ")}, got ${JSON.stringify(value)}`);
  return value as Storage;
}

/**
 * What only our harness server offers, so a test that needs it can ask
 * (see `requireCapability` in `test/support/capability.ts`) and skip on the real one.
 */
export const HARNESS_ONLY = {
  /** `--trace`: an NDJSON line per protocol call. */
  trace: "--trace; the real server has no protocol trace file",
  /** The commit log in front of SQLite (`--log-segment-bytes`, `--synchronous`) and its eviction. */
  commitLog: "our commit log and its segments; the real server writes SQLite directly",
  /** Promise ids checked against `resonate:origin`, `resonate:branch` and `resonate:parent`, as servers after v0.9.8 do. */
  lineage:
    "promise ids checked against resonate:origin, branch and parent; the real server v0.9.8 does not check them",
  /** `413` for a request body over `--max-body-bytes`. */
  bodyLimit: "a request body limit; the real server v0.9.8 accepts any size",
  /** Refusing heartbeats that name no task or mix origins, as servers after v0.9.8 do. */
  strictHeartbeats: "refusal of heartbeats that name no task or mix origins; v0.9.8 accepts both",
  /** The harness server's own error texts (the real server's carry serde positions). */
  errorTexts: "our error texts; the real server's serde messages carry a line and column",
} as const;

/** What only the real server offers (see `requireCapability`), so a test that needs it skips on ours. */
export const REAL_ONLY = {
  /** `--storage-type postgres`. */
  postgresStore: "a PostgreSQL store; our server keeps SQLite only (set RESONATE_BIN)",
} as const;

export type Capability = keyof typeof HARNESS_ONLY | keyof typeof REAL_ONLY;

/** Why `kind` lacks `capability`, or `undefined` when it has it. */
export function missingCapability(capability: Capability, kind = defaultServerKind()): string | undefined {
  if (capability in REAL_ONLY)
    return kind === "real" ? undefined : `needs ${REAL_ONLY[capability as keyof typeof REAL_ONLY]}`;
  return kind === "harness" ? undefined : `needs ${HARNESS_ONLY[capability as keyof typeof HARNESS_ONLY]}`;
}

/** Options of `startResonateServer`; every one has a default. */
export interface ResonateServerOptions {
  /** TCP port; 0 (the default) lets the OS pick. A restart keeps the port first chosen. */
  port?: number;
  /** SQLite file; by default a file in a fresh temporary folder that `stop()` removes. */
  dbPath?: string;
  /**
   * The real server's store: `sqlite` (the file `dbPath`) or `postgres`.
   * Default `RESONATE_STORAGE` for the real server, `sqlite` for ours (which
   * has no other). PostgreSQL is the one at `postgresUrl`, else a fresh one
   * started here (`startPostgres`) and stopped with the server.
   */
  storage?: Storage;
  /** The PostgreSQL database of `storage: "postgres"`, as `postgres://user@host:port/db`. */
  postgresUrl?: string;
  /** Where the PostgreSQL started here keeps its data, kept across starts. Default a temporary folder. */
  postgresDataDir?: string;
  /** `--storage-postgres-pool-size`: connections the real server keeps to PostgreSQL. Its default is 10. */
  postgresPoolSize?: number;
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
  /** `--timeouts-poll-interval`: how often expired timeouts are processed (ms). Default `SERVER_TUNING`'s. */
  tickMs?: number;
  /** `--messages-poll-interval`: how often pending messages are sent (ms). Default `SERVER_TUNING`'s. */
  messagesPollIntervalMs?: number;
  /** `--messages-batch-size`: messages of each kind one run of the delivery loop sends. Default 100. */
  messagesBatchSize?: number;
  /** `--transports-http-poll-max-connections`: message streams open at once, at most. Default 1000. */
  maxConnections?: number;
  /** Accept `debug.*` requests. */
  debug?: boolean;
  /** How the server pushes messages to `http(s)` addresses (`--transports-http-push-*`, the same flags on both servers). */
  push?: PushOptions;
  /**
   * A real `resonate` binary to run instead of ours; defaults to the
   * `RESONATE_BIN` environment variable.
   */
  bin?: string | undefined;
  /** Which server to run, whatever `RESONATE_BIN` says: `harness` is ours, `real` needs `bin` or `RESONATE_BIN`. */
  kind?: ServerKind;
  /**
   * The real binary's `--level`. Default `warn`: at its own default (`info`)
   * it logs about three lines per request, and reading them cost the
   * process that started it half a core under load.
   */
  realLogLevel?: "debug" | "info" | "warn" | "error";
  /**
   * Serve Prometheus metrics on a free port (`--observability-metrics-port`,
   * the same flag on both servers; `metricsUrl` on the handle). The real
   * server always gets one, since its default, 9090, would clash between servers.
   */
  metrics?: boolean;
  /**
   * Check a JWT on every request, as the real server does with
   * `--auth-publickey` (`--auth-iss`, `--auth-aud`); both servers get the same
   * flags. Give the public key as PEM text (written to a file the handle
   * removes) or as the path of a PEM file. Default: no tokens checked.
   */
  auth?: ResonateAuthOptions;
}

/** The HTTP push settings a test or a launcher gives the server; each has the default of `SERVER_TUNING` or the server's own. */
export interface PushOptions {
  /**
   * The token the server sends with every push (`--transports-http-push-auth-mode bearer
   * --transports-http-push-auth-token`), which the API's push listener asks for
   * (`RESONATE_PUSH_TOKEN`). Default: pushes carry none.
   */
  token?: string;
  /** `--transports-http-push-auth-header`: where the token goes. Default `Authorization`. */
  header?: string;
  /** `--transports-http-push-enabled`. Default true. */
  enabled?: boolean;
  /** `--transports-http-push-request-timeout` (ms). Default `SERVER_TUNING.pushRequestTimeoutMs`. */
  requestTimeoutMs?: number;
}

/** The key and the claims a server with tokens checks; see `harness/jwt.ts` for keys and tokens. */
export type ResonateAuthOptions = (
  | { publicKeyPem: string; publicKeyPath?: undefined }
  | { publicKeyPath: string; publicKeyPem?: undefined }
) & {
  /** `--auth-iss`: tokens must carry this `iss`. */
  issuer?: string;
  /** `--auth-aud`: tokens must list this in `aud`. */
  audience?: string;
};

/** A running Resonate server that a test started. */
export interface ResonateServer extends AsyncDisposable {
  /** Ours, or the real binary. */
  readonly kind: ServerKind;
  /** Base URL for `new Resonate({url})` and `RESONATE_URL`. */
  readonly url: string;
  readonly port: number;
  readonly dbPath: string;
  /** The store it runs on. */
  readonly storage: Storage;
  /** The PostgreSQL it started for its store (none when it runs on SQLite or on one given by URL). */
  readonly postgres: Postgres | undefined;
  readonly tracePath: string | undefined;
  /** Where its Prometheus metrics are served (`/metrics`), when it serves them. */
  readonly metricsUrl: string | undefined;
  /** Whether it checks tokens (`auth` was given). */
  readonly authenticated: boolean;
  /** The bearer token its HTTP pushes carry, when `push.token` was given. */
  readonly pushToken: string | undefined;
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
  const bin = opts.kind === "harness" ? undefined : opts.bin || process.env.RESONATE_BIN || undefined;
  if (opts.kind === "real" && !bin)
    throw new Error("startResonateServer: kind real needs bin or RESONATE_BIN");
  const storage = opts.storage ?? (bin ? defaultStorage() : "sqlite");
  if (storage === "postgres" && !bin)
    throw new Error(
      "startResonateServer: our server stores in SQLite only; PostgreSQL needs the real server (RESONATE_BIN)",
    );
  const tickMs = opts.tickMs ?? SERVER_TUNING.timeoutsPollIntervalMs;
  const messagesMs = opts.messagesPollIntervalMs ?? messagesPollFor(storage);
  const temp = opts.dbPath ? undefined : tempDir("resonate-server-");
  const dbPath = opts.dbPath ?? join(temp?.path as string, "resonate.db");
  let port = opts.port ?? 0;
  if (bin && port === 0) port = freePort();
  // Chosen once, so a restarted server serves its metrics where it did before.
  const metricsPort = opts.metrics || bin ? freePort() : undefined;
  const keyDir = opts.auth?.publicKeyPem !== undefined ? tempDir("resonate-auth-") : undefined;
  let publicKeyPath = opts.auth?.publicKeyPath;
  if (keyDir) {
    publicKeyPath = join(keyDir.path, "public.pem");
    writeFileSync(publicKeyPath, opts.auth?.publicKeyPem as string);
  }
  const postgres =
    storage === "postgres" && !opts.postgresUrl
      ? await startPostgres({ dataDir: opts.postgresDataDir })
      : undefined;
  const postgresUrl = opts.postgresUrl ?? postgres?.url;
  const removeTemp = async () => {
    temp?.remove();
    keyDir?.remove();
    await postgres?.stop();
  };
  const store =
    storage === "postgres"
      ? [
          "--storage-type",
          "postgres",
          "--storage-postgres-url",
          postgresUrl as string,
          ...(opts.postgresPoolSize ? ["--storage-postgres-pool-size", String(opts.postgresPoolSize)] : []),
        ]
      : ["--storage-sqlite-path", dbPath];
  /** The flags both servers take, with the same meaning. */
  const shared = [
    "--timeouts-poll-interval",
    String(tickMs),
    "--messages-poll-interval",
    String(messagesMs),
    ...(opts.messagesBatchSize ? ["--messages-batch-size", String(opts.messagesBatchSize)] : []),
    ...(opts.maxConnections ? ["--transports-http-poll-max-connections", String(opts.maxConnections)] : []),
    ...(opts.leaseTimeoutMs ? ["--tasks-lease-timeout", String(opts.leaseTimeoutMs)] : []),
    ...(opts.retryTimeoutMs ? ["--tasks-retry-timeout", String(opts.retryTimeoutMs)] : []),
    ...(opts.debug ? ["--debug"] : []),
    ...(metricsPort ? ["--observability-metrics-port", String(metricsPort)] : []),
    ...(publicKeyPath ? ["--auth-publickey", publicKeyPath] : []),
    ...(publicKeyPath && opts.auth?.issuer !== undefined ? ["--auth-iss", opts.auth.issuer] : []),
    ...(publicKeyPath && opts.auth?.audience !== undefined ? ["--auth-aud", opts.auth.audience] : []),
    "--transports-http-push-connect-timeout",
    String(SERVER_TUNING.pushConnectTimeoutMs),
    "--transports-http-push-request-timeout",
    String(opts.push?.requestTimeoutMs ?? SERVER_TUNING.pushRequestTimeoutMs),
    ...(opts.push?.enabled === false ? ["--transports-http-push-enabled", "false"] : []),
    ...(opts.push?.token
      ? ["--transports-http-push-auth-mode", "bearer", "--transports-http-push-auth-token", opts.push.token]
      : []),
    ...(opts.push?.header ? ["--transports-http-push-auth-header", opts.push.header] : []),
  ];

  const launch = async (): Promise<ChildProcess> => {
    if (bin) {
      const child = spawnProcess({
        name: "resonate",
        // The real server reads RESONATE_* variables as its own settings (RESONATE_AUTH as its auth
        // section, RESONATE_PORT as its port…); ours, meant for the service, must not reach it.
        env: Object.fromEntries(
          Object.keys(process.env)
            .filter((k) => k.startsWith("RESONATE_"))
            .map((k) => [k, undefined]),
        ),
        // The real binary does not watch its parent: the kernel kills it when this process dies.
        cmd: [
          ...dieWithParent("the real Resonate server"),
          bin,
          "serve",
          "--server-port",
          String(port),
          ...store,
          "--level",
          opts.realLogLevel ?? "warn",
          ...shared,
        ],
      });
      try {
        let exitCode: number | undefined;
        void child.exited.then((code) => {
          exitCode = code;
        });
        const state = await waitFor(
          async () =>
            exitCode !== undefined
              ? "exited"
              : (await fetch(`http://127.0.0.1:${port}/health`)).ok && "answering",
          { timeout: 20_000, message: `resonate binary answering on port ${port}` },
        );
        if (state === "exited")
          throw new Error(`resonate binary exited with ${exitCode} before it answered:\n${child.output()}`);
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
        ...shared,
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

  let current: ChildProcess;
  try {
    current = await launch();
  } catch (error) {
    await removeTemp();
    throw error;
  }

  const handle: ResonateServer = {
    kind: bin ? "real" : "harness",
    get url() {
      return `http://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    dbPath,
    storage,
    postgres,
    tracePath: opts.tracePath,
    metricsUrl: metricsPort ? `http://127.0.0.1:${metricsPort}/metrics` : undefined,
    authenticated: publicKeyPath !== undefined,
    pushToken: opts.push?.token,
    get process() {
      return current;
    },
    async stop() {
      await current.stop();
      await removeTemp();
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
