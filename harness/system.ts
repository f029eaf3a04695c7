import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { GROUPS } from "../core/config.ts";
import { type ApiAuth, apiAuthIn } from "./api-auth.ts";
import { type Sandbox, startSandbox } from "./fakes/sandbox.ts";
import { authKeysIn, signToken } from "./jwt.ts";
import { tempDir } from "./scope.ts";
import {
  type ApiProcess,
  type ApiRuntime,
  spawnApi,
  spawnWorkerPool,
  type WorkerEvent,
  type WorkerPool,
} from "./service.ts";
import {
  defaultServerKind,
  type ResonateServer,
  type ResonateServerOptions,
  startResonateServer,
} from "./start-server.ts";

/** Where the durable functions run: in worker processes per group, or all inside the API. */
export type SystemMode = "distributed" | "colocated";

/** Defaults of `startSystem`. */
export const SYSTEM_DEFAULTS = {
  mode: "distributed",
  /** Worker processes of each group in `GROUPS` when `workers` is not given. */
  workersPerGroup: 1,
  apiRuntime: "bun",
  apiProcesses: 1,
  /** How long `restartApi` waits after SIGTERM before SIGKILL (ms): past the API's own SHUTDOWN_GRACE_MS default. */
  apiStopGraceMs: 15_000,
  /** The API's port: 0 lets the OS pick (a restart keeps the port it got). */
  apiPort: 0,
  /** Where the sandbox sends payment webhooks until the API is up, when its port is not known before (nothing listens there). */
  webhookUrlBeforeApi: "http://127.0.0.1:9/not-listening-yet",
  /** The file in the data folder that keeps a generated webhook secret. */
  webhookSecretFile: "webhook-secret",
} as const;

/** Options of `startSystem`; every one has a default. */
export interface SystemOptions {
  /**
   * `distributed` (the default): worker processes per group; `colocated`:
   * no worker process, the API runs every durable function. Given to the
   * API and the workers as MODE.
   */
  mode?: SystemMode;
  /** Worker processes per group, e.g. `{ db: 1, "pricing-workers": 2 }`; a group left out gets none. Default one of each group. Ignored when colocated. */
  workers?: Readonly<Record<string, number>>;
  /**
   * Replace a worker that dies and try a failed start again, pausing
   * `restartDelayMs` (doubled for each further failed start up to
   * `maxRestartDelayMs`; see `spawnWorkerPool`). Default false: a worker
   * that fails to start fails `startSystem`, and a dead one stays dead.
   */
  supervise?: boolean | { restartDelayMs?: number; maxRestartDelayMs?: number };
  /** Extra `bun` arguments for every worker, before its script (e.g. a `--preload`). */
  workerBunArgs?: string[];
  /**
   * The Resonate server: options of the one to start (ours, or the real
   * binary with `kind`/`bin`/`RESONATE_BIN`; its state file defaults to
   * `resonate.db`, or `resonate-real.db` for the real one, in the data
   * folder), or `{ url }` of a server that runs already. Default: ours.
   */
  server?: ResonateServerOptions | { url: string };
  /** The runtime of the API processes. Default bun. */
  apiRuntime?: ApiRuntime;
  /** API processes, all on one port (`reusePort`), each with a Resonate pid of its own. Default 1. */
  apiProcesses?: number;
  /** The API's port. Default 0 (the OS picks); every API process and every restart keeps the one the first got. */
  apiPort?: number;
  /** The payment provider's base URL (PAYMENT_URL). Default the sandbox's. */
  paymentUrl?: string;
  /** The carrier's base URL (CARRIER_URL). Default the sandbox's. */
  carrierUrl?: string;
  /**
   * The fake payment provider and carrier served from this process, their
   * ledgers in `<dataDir>/sandbox`: started unless both URLs above are
   * given. `false`: none, and no URL is set for what was not given.
   */
  sandbox?: false | { port?: number; webhookDelayMs?: number };
  /** State folder (DATA_DIR of the API and workers, the server's file, the ledgers), kept. Default a fresh temporary folder that `stop()` removes. */
  dataDir?: string;
  /** WEBHOOK_SECRET. Default the one kept in the data folder by an earlier start, else a new one, kept there. */
  webhookSecret?: string;
  /** Extra environment of the API and every worker, over what the system sets. */
  env?: Record<string, string>;
  /** Extra environment per worker group, over `env`. */
  groupEnv?: Readonly<Record<string, Record<string, string>>>;
  /** Extra environment of the API, over `env`. */
  apiEnv?: Record<string, string>;
  /**
   * Run the Resonate server with tokens checked (`--auth-publickey`, on
   * either server): the key pair is kept in the data folder
   * (`resonate-auth-*.pem`, made on the first start), and the API and each
   * worker get a token of their own in `RESONATE_TOKEN` (see
   * `RESONATE_TOKEN_CLAIMS`), also written to `resonate-tokens.json` there.
   * Needs a server that `startSystem` starts. Default false.
   */
  resonateAuth?: boolean | { expiresInSeconds?: number };
  /**
   * Results reach the API by HTTP push rather than over its message stream:
   * the server started here sends a fresh bearer token with every push, and
   * each API process listens for them on 127.0.0.1 (`RESONATE_PUSH_HOST`,
   * `RESONATE_PUSH_TOKEN`). Needs a server that `startSystem` starts. Default false.
   */
  push?: boolean;
  /**
   * How the API checks its callers: by default with the key pair kept in the
   * data folder (`api-auth-*.pem`, made on the first start; see
   * `harness/api-auth.ts`), or the one given (tests share one); `false`:
   * not at all (`AUTH_DISABLED=1`); `"environment"`: as the AUTH_* settings
   * in this process's environment (or `env`) say, which the API inherits.
   */
  apiAuth?: false | ApiAuth | "environment";
  /** Aborting it during start-up stops what was started, and `startSystem` rejects with its reason. */
  signal?: AbortSignal;
  /** Told of each step of start-up, and of every worker that is ready, dies or fails to start. */
  onEvent?: (event: SystemEvent) => void;
}

/** What `startSystem` did, for a launcher to report. */
export type SystemEvent =
  | { type: "secret-generated"; secret: string; file: string }
  | { type: "auth-keys"; publicKeyPath: string; created: boolean; tokensFile: string }
  | { type: "server-started"; server: ResonateServer }
  | { type: "sandbox-started"; sandbox: Sandbox }
  | { type: "api-started"; api: ApiProcess }
  | WorkerEvent;

/** A running system: everything `startSystem` started, and how to reach it. */
export interface System extends AsyncDisposable {
  readonly mode: SystemMode;
  readonly dataDir: string;
  readonly webhookSecret: string;
  readonly resonateUrl: string;
  /** The server it started; undefined when `server` gave the URL of a running one. */
  readonly server: ResonateServer | undefined;
  readonly sandbox: Sandbox | undefined;
  readonly paymentUrl: string | undefined;
  readonly carrierUrl: string | undefined;
  /** The environment the API and every worker got (before `groupEnv` and `apiEnv`). */
  readonly env: Readonly<Record<string, string>>;
  /**
   * With `resonateAuth`: the token each process got (`api` and each group
   * by name) and an `admin` one for tests and tools; undefined otherwise.
   */
  readonly resonateTokens: Readonly<Record<string, string>> | undefined;
  /** The key the API checks its callers' tokens with, and tokens signed with it; undefined with `apiAuth` `false` or `"environment"`. */
  readonly apiAuth: ApiAuth | undefined;
  /** The worker processes (none when colocated). */
  readonly workers: WorkerPool;
  /** The first API process (`apis[0]`). */
  readonly api: ApiProcess;
  /** Every API process, by index; a restarted one takes its place. */
  readonly apis: readonly ApiProcess[];
  /** The API's base URL, shared by every API process; the same after a restart. */
  readonly apiUrl: string;
  /** SIGKILLs API process `index` (default 0); resolves once it is gone. */
  killApi(index?: number): Promise<void>;
  /**
   * Stops API process `index` (default 0) if it runs, as an orchestrator
   * does (SIGTERM; SIGKILL only past `graceMs`, default 15 s), and starts a
   * new one on the same port; resolves once it is ready. The other API
   * processes serve meanwhile.
   */
  restartApi(index?: number, graceMs?: number): Promise<void>;
  /** Environment every API process started from now on gets, over what it got (a new build for the next restarts). */
  setApiEnv(env: Record<string, string>): void;
  /** Stops the API, then the workers, then the sandbox and the server; removes a temporary data folder. */
  stop(): Promise<void>;
}

/** `promise`, or its rejection with the abort reason once `signal` aborts first. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  return new Promise<T>((resolvePromise, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolvePromise, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/**
 * The token claims of each process with `resonateAuth`. A non-admin token
 * may touch only ids that start with its `prefix` (the real server's rule:
 * a promise or task id, a callback's or listener's awaited id, the ids a
 * heartbeat names; searches never), so a group gets one only when every id
 * it creates, acquires, awaits or heartbeats shares one prefix:
 * - `business` runs `place_order` under `checkout:<user>:<key>`, and its
 *   steps and RPCs to `db` are `checkout:…` children: prefix `checkout:`.
 * - `order-workers` run `order:<id>` and `ship:<id>` (and their children):
 *   no common prefix but `""`, so admin.
 * - `pricing-workers` run `quote:<hash>` and read the price list under
 *   `prices:<window>`: admin.
 * - `db` runs the leaf functions every workflow calls, under all of them: admin.
 * - the API starts and reads `order:`, `ship:`, `quote:`, `checkout:`,
 *   `lookup:` ids and `readyz:probe`, and settles the webhooks' promises: admin.
 */
export const RESONATE_TOKEN_CLAIMS: Readonly<Record<string, { role: string; prefix?: string }>> = {
  api: { role: "admin" },
  "order-workers": { role: "admin" },
  "pricing-workers": { role: "admin" },
  db: { role: "admin" },
  business: { role: "worker", prefix: "checkout:" },
};

/** The file in the data folder that lists the tokens `resonateAuth` handed out. */
const TOKENS_FILE = "resonate-tokens.json";

/** The key pair in `dataDir` and a token for every process that may run (unknown groups get admin). */
async function resonateTokensIn(
  dataDir: string,
  groups: readonly string[],
  claims: { expiresInSeconds?: number | undefined; iss?: string | undefined; aud?: string | undefined },
  onEvent: SystemOptions["onEvent"],
): Promise<{ publicKeyPath: string; tokens: Record<string, string> }> {
  const keys = authKeysIn(dataDir);
  const tokens: Record<string, string> = {};
  for (const name of ["admin", "api", ...groups]) {
    tokens[name] = await signToken(keys, {
      ...(RESONATE_TOKEN_CLAIMS[name] ?? { role: "admin" }),
      ...(claims.expiresInSeconds !== undefined ? { expiresInSeconds: claims.expiresInSeconds } : {}),
      ...(claims.iss !== undefined ? { iss: claims.iss } : {}),
      ...(claims.aud !== undefined ? { aud: claims.aud } : {}),
    });
  }
  const tokensFile = join(dataDir, TOKENS_FILE);
  writeFileSync(tokensFile, `${JSON.stringify(tokens, null, 2)}\n`, { mode: 0o600 });
  onEvent?.({ type: "auth-keys", publicKeyPath: keys.publicKeyPath, created: keys.created, tokensFile });
  return { publicKeyPath: keys.publicKeyPath, tokens };
}

/** The given secret, else the one kept in `dataDir`, else a new one that is kept there. */
function webhookSecretIn(
  dataDir: string,
  given: string | undefined,
  onEvent: SystemOptions["onEvent"],
): string {
  if (given) return given;
  const file = join(dataDir, SYSTEM_DEFAULTS.webhookSecretFile);
  if (existsSync(file)) return readFileSync(file, "utf8").trim();
  const secret = `whsec_${randomBytes(24).toString("base64")}`;
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  onEvent?.({ type: "secret-generated", secret, file });
  return secret;
}

/**
 * Starts the whole system: a Resonate server (or uses a running one), the
 * sandbox third parties, worker processes per group and the API, in that
 * order, each ready before the next starts (a process is ready once it has
 * printed its ready line, which the API and the workers print once their
 * Resonate message stream is open). If any of it fails, or `signal` aborts,
 * what was started is stopped before the error is thrown.
 *
 *   await using system = await startSystem({ workers: { db: 1 } });
 */
export async function startSystem(options: SystemOptions = {}): Promise<System> {
  const { signal, onEvent } = options;
  const mode = options.mode ?? SYSTEM_DEFAULTS.mode;
  const temporary = options.dataDir === undefined ? tempDir("system-") : undefined;
  const dataDir = temporary?.path ?? resolve(options.dataDir as string);
  mkdirSync(dataDir, { recursive: true });
  /** Stop steps, run last-registered first; one that fails does not keep the others from running. */
  const steps: (() => Promise<unknown>)[] = [];
  if (temporary) steps.push(async () => temporary.remove());
  let stopped: Promise<void> | undefined;
  let workers: WorkerPool | undefined;
  const stop = () => {
    stopped ??= (async () => {
      // Workers that die while the API stops (a Ctrl-C reaches them too) are not replaced.
      workers?.stopStarting();
      for (const step of steps.toReversed()) await step().catch(() => {});
    })();
    return stopped;
  };
  /** Stops what `start` resolves with when the system stops, even if start-up gave up waiting for it. */
  const stopWhenStarted = <T extends { stop(): Promise<unknown> }>(start: Promise<T>): Promise<T> => {
    steps.push(() =>
      start.then(
        (started) => started.stop(),
        () => {},
      ),
    );
    return start;
  };
  /** Waits for `part` to be ready, giving up when `signal` aborts; the error names the part. */
  const ready = <T>(part: string, start: Promise<T>): Promise<T> =>
    abortable(start, signal).catch((error: unknown) => {
      if (signal?.aborted) throw error;
      throw new Error(`startSystem: ${part} did not start: ${(error as Error).message}`, { cause: error });
    });

  try {
    signal?.throwIfAborted();
    const webhookSecret = webhookSecretIn(dataDir, options.webhookSecret, onEvent);

    const serverOptions = options.server ?? {};
    const groups =
      mode === "colocated"
        ? {}
        : (options.workers ??
          Object.fromEntries(GROUPS.map((group) => [group, SYSTEM_DEFAULTS.workersPerGroup])));
    let auth: { publicKeyPath: string; tokens: Record<string, string> } | undefined;
    if (options.resonateAuth) {
      if ("url" in serverOptions)
        throw new Error(
          "startSystem: resonateAuth needs a Resonate server that startSystem starts, not a URL",
        );
      const expiresIn =
        typeof options.resonateAuth === "object" ? options.resonateAuth.expiresInSeconds : undefined;
      auth = await resonateTokensIn(
        dataDir,
        Object.keys(groups),
        { expiresInSeconds: expiresIn, iss: serverOptions.auth?.issuer, aud: serverOptions.auth?.audience },
        onEvent,
      );
    }
    if (options.push && "url" in serverOptions)
      throw new Error("startSystem: push needs a Resonate server that startSystem starts, not a URL");
    const pushToken = options.push ? randomBytes(24).toString("base64url") : undefined;
    let server: ResonateServer | undefined;
    let resonateUrl: string;
    if ("url" in serverOptions) {
      resonateUrl = serverOptions.url.replace(/\/+$/, "");
    } else {
      const kind = serverOptions.kind ?? (serverOptions.bin ? "real" : defaultServerKind());
      // The two servers' state files have different layouts, so each keeps its own.
      const dbPath = join(dataDir, kind === "real" ? "resonate-real.db" : "resonate.db");
      server = await ready(
        "the Resonate server",
        stopWhenStarted(
          startResonateServer({
            dbPath,
            ...serverOptions,
            ...(pushToken ? { push: { ...serverOptions.push, token: pushToken } } : {}),
            ...(auth
              ? {
                  auth: {
                    publicKeyPath: auth.publicKeyPath,
                    issuer: serverOptions.auth?.issuer,
                    audience: serverOptions.auth?.audience,
                  },
                }
              : {}),
          }),
        ),
      );
      resonateUrl = server.url;
      onEvent?.({ type: "server-started", server });
    }

    let apiPort = options.apiPort ?? SYSTEM_DEFAULTS.apiPort;
    let sandbox: Sandbox | undefined;
    const wantsSandbox = options.sandbox !== false && !(options.paymentUrl && options.carrierUrl);
    if (wantsSandbox) {
      const settings = options.sandbox || {};
      try {
        sandbox = startSandbox({
          port: settings.port,
          dataDir: join(dataDir, "sandbox"),
          webhookUrl:
            apiPort === 0
              ? SYSTEM_DEFAULTS.webhookUrlBeforeApi
              : `http://127.0.0.1:${apiPort}/webhooks/payment`,
          webhookSecret,
          webhookDelayMs: settings.webhookDelayMs,
        });
      } catch (error) {
        throw new Error(`startSystem: the sandbox did not start: ${(error as Error).message}`, {
          cause: error,
        });
      }
      const started = sandbox;
      steps.push(() => started.stop());
      onEvent?.({ type: "sandbox-started", sandbox });
    }
    const paymentUrl = options.paymentUrl ?? sandbox?.paymentUrl;
    const carrierUrl = options.carrierUrl ?? sandbox?.carrierUrl;

    const env: Record<string, string> = {
      RESONATE_URL: resonateUrl,
      WEBHOOK_SECRET: webhookSecret,
      DATA_DIR: dataDir,
      MODE: mode,
      ...(paymentUrl ? { PAYMENT_URL: paymentUrl } : {}),
      ...(carrierUrl ? { CARRIER_URL: carrierUrl } : {}),
      ...options.env,
    };

    const supervise = options.supervise ?? false;
    const tokens = auth?.tokens;
    const groupEnv = tokens
      ? Object.fromEntries(
          Object.keys(groups).map((group) => [
            group,
            { RESONATE_TOKEN: tokens[group] as string, ...options.groupEnv?.[group] },
          ]),
        )
      : options.groupEnv;
    const given = options.apiAuth ?? apiAuthIn(dataDir);
    const apiAuth = given === false || given === "environment" ? undefined : given;
    const apiEnv = {
      ...(tokens ? { RESONATE_TOKEN: tokens.api as string } : {}),
      ...(pushToken ? { RESONATE_PUSH_HOST: "127.0.0.1", RESONATE_PUSH_TOKEN: pushToken } : {}),
      ...(apiAuth ? apiAuth.env : given === false ? { AUTH_DISABLED: "1" } : {}),
      ...options.apiEnv,
    };
    const pool = spawnWorkerPool({
      groups,
      env,
      groupEnv,
      bunArgs: options.workerBunArgs,
      restart: supervise !== false,
      ...(typeof supervise === "object" ? supervise : {}),
      onEvent,
    });
    workers = pool;
    steps.push(() => pool.stop());
    await ready("a worker", pool.ready());

    const runtime = options.apiRuntime ?? SYSTEM_DEFAULTS.apiRuntime;
    const apiCount = options.apiProcesses ?? SYSTEM_DEFAULTS.apiProcesses;
    if (!Number.isInteger(apiCount) || apiCount < 1 || apiCount > 64)
      throw new Error(`startSystem: apiProcesses must be a whole number from 1 to 64, got ${apiCount}`);
    let laterApiEnv: Record<string, string> = {};
    const launchApi = () =>
      spawnApi({ runtime, env: { ...env, ...apiEnv, ...laterApiEnv, PORT: String(apiPort) } });
    // The first takes the port (the OS picks one for 0); the others join it there.
    const apis: ApiProcess[] = [await ready(`the API (on ${runtime})`, stopWhenStarted(launchApi()))];
    apiPort = Number(new URL((apis[0] as ApiProcess).url).port);
    for (let i = 1; i < apiCount; i++)
      apis.push(await ready(`API process ${i}`, stopWhenStarted(launchApi())));
    // Restarted API processes are stopped through this step too.
    steps.push(() => Promise.all(apis.map((api) => api.stop())));
    const apiUrl = (apis[0] as ApiProcess).url;
    if (sandbox) sandbox.payment.webhookUrl = `${apiUrl}/webhooks/payment`;
    for (const api of apis) onEvent?.({ type: "api-started", api });
    const apiAt = (index: number) => {
      const api = apis[index];
      if (!api) throw new Error(`startSystem: no API process ${index} (there are ${apis.length})`);
      return api;
    };

    return {
      mode,
      dataDir,
      webhookSecret,
      resonateUrl,
      server,
      sandbox,
      paymentUrl,
      carrierUrl,
      env,
      resonateTokens: tokens,
      apiAuth,
      workers: pool,
      get api() {
        return apiAt(0);
      },
      apis,
      apiUrl,
      async killApi(index = 0) {
        const api = apiAt(index);
        api.kill("SIGKILL");
        await api.exited;
      },
      setApiEnv(extra) {
        laterApiEnv = { ...laterApiEnv, ...extra };
      },
      async restartApi(index = 0, graceMs = SYSTEM_DEFAULTS.apiStopGraceMs) {
        await apiAt(index).stop(graceMs);
        apis[index] = await launchApi();
        onEvent?.({ type: "api-started", api: apis[index] as ApiProcess });
      },
      stop,
      [Symbol.asyncDispose]: stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
