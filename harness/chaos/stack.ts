import { Database } from "bun:sqlite";
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { ApiAuth } from "../api-auth.ts";
import { PaymentProvider } from "../fakes/payment.ts";
import { openScope } from "../scope.ts";
import type { ApiProcess } from "../service.ts";
import type { ResonateServer, ServerKind, Storage } from "../start-server.ts";
import { startSystem } from "../system.ts";
import { checkInvariants, type InvariantReport, type Observations, type WebhookTally } from "./invariants.ts";
import { CHAOS_PRELOAD, CHAOS_SUPERVISION, type WorkerPool } from "./pool.ts";
import { seededRandom } from "./rng.ts";

export const CHAOS_SECRET = `whsec_${Buffer.from("chaos-harness-secret-0123456789ab").toString("base64")}`;

export interface ChaosStackOptions {
  /** Which Resonate server: ours, or the real binary `RESONATE_BIN` names. Default: the real one when it is set. */
  server?: ServerKind;
  /** The real server's store (`startResonateServer`'s `storage`). Default `RESONATE_STORAGE`. */
  storage?: Storage;
  /** Worker processes per group. Default one of each. */
  groups?: Record<string, number>;
  /** API processes sharing the API's one port (`startSystem`'s `apiProcesses`). Default 1. */
  apiProcesses?: number;
  /** CRASH_AT for the workers (see worker-preload.ts). */
  crashAt?: string;
  /** Each payment webhook is delivered this many times at once. Default 1. */
  webhookCopies?: number;
  /** Deliver each batch of payment webhooks in a random order, from this seed. */
  webhookShuffleSeed?: number;
  /** How long after a charge its payment webhook is due (ms): the window in which a cancel meets a taken charge. Default 200. */
  paymentWebhookDelayMs?: number;
  /** Task lease of every client (ms): how soon a dead worker's task moves on. Default 1000. */
  ttlMs?: number;
  /** Extra environment for workers and API. */
  env?: Record<string, string>;
  /** Extra environment per worker group. */
  groupEnv?: Record<string, Record<string, string>>;
  apiEnv?: Record<string, string>;
  /**
   * The key the API checks its callers' tokens with, and tokens signed with
   * it (tests pass `TEST_API_AUTH`). Default the key pair `startSystem`
   * keeps in the stack's data folder.
   */
  apiAuth?: ApiAuth;
}

/** A restartable API process on a fixed port: the first of the stack's API processes. */
export interface RestartableApi {
  readonly url: string;
  readonly process: ApiProcess;
  /** SIGKILLs it; resolves once it is gone. */
  kill(): Promise<void>;
  /** Starts it again (after `kill`, or SIGTERMs it first if it runs); resolves once it is ready. */
  restart(): Promise<void>;
}

/**
 * The whole system for chaos runs: a Resonate server, a pool of workers
 * loaded with the chaos preload (probes, crash points, the fakes mounted
 * with msw and their ledgers in the data folder), the API on a fixed port,
 * and a dispatcher that delivers the payment provider's webhooks from its
 * ledger.
 */
export interface ChaosStack extends AsyncDisposable {
  readonly dataDir: string;
  readonly server: ResonateServer;
  readonly pool: WorkerPool;
  readonly api: RestartableApi;
  /** How many API processes share the API's port (`apis.length`). */
  readonly apiProcesses: number;
  /** Every API process, by index; a restarted one takes its place. */
  readonly apis: readonly ApiProcess[];
  /**
   * Stops API process `index` as an orchestrator does (SIGTERM; SIGKILL only
   * after `graceMs`, default `SYSTEM_DEFAULTS.apiStopGraceMs`) and starts a
   * new one on the same port; resolves once it is ready. The others serve meanwhile.
   */
  restartApi(index: number, graceMs?: number): Promise<void>;
  /** SIGKILLs API process `index`; resolves once it is gone (`restartApi(index)` starts it again). */
  killApi(index: number): Promise<void>;
  /** Environment the API processes started from now on get (see `System.setApiEnv`). */
  setApiEnv(env: Record<string, string>): void;
  /** Signs tokens the API accepts: pass `token` to `runWorkload`. */
  readonly apiAuth: ApiAuth;
  readonly probeLog: string;
  readonly paymentLedger: string;
  readonly carrierLedger: string;
  readonly databasePath: string;
  /** Charges, shipments and order rows recorded for one order id. */
  effects(orderId: string): { charges: number; shipments: number; rows: number };
  /** The invariant report over the given accepted workflow ids, and what the clients were answered. */
  report(workflows: string[], webhooks?: WebhookTally, observed?: Observations): Promise<InvariantReport>;
  stop(): Promise<void>;
}

function countWhere(path: string, sql: string, value: string): number {
  if (!existsSync(path)) return 0;
  const db = new Database(path, { readonly: true });
  try {
    return db.query<{ n: number }, [string]>(sql).get(value)?.n ?? 0;
  } finally {
    db.close();
  }
}

export async function startChaosStack(opts: ChaosStackOptions = {}): Promise<ChaosStack> {
  const scope = openScope("chaos-");
  const dataDir = scope.dir;
  const ledgers = join(dataDir, "ledgers");
  const stop = () => scope.close();
  try {
    const probeLog = join(dataDir, "probes.ndjson");
    const system = await startSystem({
      dataDir,
      server: {
        retryTimeoutMs: 1_000,
        tickMs: 100,
        ...(opts.server ? { kind: opts.server } : {}),
        ...(opts.storage ? { storage: opts.storage } : {}),
      },
      workers: opts.groups ?? { "order-workers": 1, "pricing-workers": 1, db: 1, business: 1 },
      apiProcesses: opts.apiProcesses ?? 1,
      supervise: CHAOS_SUPERVISION,
      workerBunArgs: ["--preload", CHAOS_PRELOAD],
      // Answered inside each worker by the preload's msw fakes.
      paymentUrl: "http://payment.fake",
      carrierUrl: "http://carrier.fake",
      webhookSecret: CHAOS_SECRET,
      env: {
        FAKES_LEDGER_DIR: ledgers,
        RESONATE_TTL_MS: String(opts.ttlMs ?? 1_000),
        PROBE_LOG: probeLog,
        CRASH_DIR: join(dataDir, "crashes"),
        CRASH_AT: opts.crashAt ?? "",
        ...(opts.paymentWebhookDelayMs === undefined
          ? {}
          : { FAKES_WEBHOOK_DELAY_MS: String(opts.paymentWebhookDelayMs) }),
        ...opts.env,
      },
      groupEnv: opts.groupEnv,
      apiEnv: opts.apiEnv,
      apiAuth: opts.apiAuth,
      onEvent: (event) => {
        // A worker killed while starting (or a start that failed) is simply tried again.
        if (event.type === "worker-start-failed" && process.env.DEBUG)
          console.error(`pool: ${event.slot.group}#${event.slot.index} failed to start:`, event.error);
      },
    });
    scope.defer(() => system.stop());
    const server = system.server;
    if (!server) throw new Error("startChaosStack: the system started no server");
    const apiAuth = system.apiAuth;
    if (!apiAuth) throw new Error("startChaosStack: the API does not check its callers");
    const apiUrl = system.apiUrl;
    // One change at a time per API process: a scheduled kill and a rolling restart of the same
    // process would otherwise both start a successor, and the system would lose track of one.
    const queues = system.apis.map(() => Promise.resolve());
    const serially = (index: number, change: () => Promise<void>): Promise<void> => {
      const queued = (queues[index] ?? Promise.resolve()).then(change);
      queues[index] = queued.catch(() => {});
      return queued;
    };
    const restartApi = (index: number, graceMs?: number) =>
      serially(index, () => system.restartApi(index, graceMs));
    const killApi = (index: number) => serially(index, () => system.killApi(index));
    const api: RestartableApi = {
      url: apiUrl,
      get process() {
        return system.api;
      },
      kill: () => killApi(0),
      restart: () => restartApi(0),
    };

    const dispatcher = new PaymentProvider({
      ledgerPath: join(ledgers, "payment.db"),
      webhookUrl: `${apiUrl}/webhooks/payment`,
      webhookSecret: CHAOS_SECRET,
    });
    const shuffleSeed = opts.webhookShuffleSeed;
    const stopDelivering = dispatcher.startDelivering({
      copies: opts.webhookCopies ?? 1,
      shuffle: shuffleSeed === undefined ? undefined : seededRandom(shuffleSeed),
    });
    scope.defer(async () => {
      await stopDelivering();
      dispatcher.close();
    });

    const paymentLedger = join(ledgers, "payment.db");
    const carrierLedger = join(ledgers, "carrier.db");
    const databasePath = join(dataDir, "app.db");
    return {
      dataDir,
      server,
      pool: system.workers,
      api,
      apiProcesses: system.apis.length,
      apis: system.apis,
      restartApi,
      killApi,
      setApiEnv: (env) => system.setApiEnv(env),
      apiAuth,
      probeLog,
      paymentLedger,
      carrierLedger,
      databasePath,
      effects: (orderId) => ({
        charges: countWhere(paymentLedger, "SELECT COUNT(*) AS n FROM charges WHERE order_id = ?", orderId),
        shipments: countWhere(
          carrierLedger,
          "SELECT COUNT(*) AS n FROM shipments WHERE order_id = ?",
          orderId,
        ),
        rows: countWhere(databasePath, "SELECT COUNT(*) AS n FROM orders WHERE order_id = ?", orderId),
      }),
      report: (workflows, webhooks, observed) =>
        checkInvariants({
          ...observed,
          resonateUrl: server.url,
          workflows,
          paymentLedger,
          carrierLedger,
          databasePath,
          webhooks,
        }),
      stop,
      [Symbol.asyncDispose]: stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
