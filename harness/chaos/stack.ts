import { Database } from "bun:sqlite";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { PaymentProvider } from "../fakes/payment.ts";
import { freePort } from "../process.ts";
import { type ResonateServer, startResonateServer } from "../resonate-server.ts";
import { openScope } from "../scope.ts";
import { type ApiProcess, spawnApi } from "../service.ts";
import { checkInvariants, type InvariantReport, type WebhookTally } from "./invariants.ts";
import { startWorkerPool, type WorkerPool } from "./pool.ts";
import { seededRandom } from "./rng.ts";

export const CHAOS_SECRET = `whsec_${Buffer.from("chaos-harness-secret-0123456789ab").toString("base64")}`;

export interface ChaosStackOptions {
  /** Worker processes per group. Default one of each. */
  groups?: Record<string, number>;
  /** CRASH_AT for the workers (see worker-preload.ts). */
  crashAt?: string;
  /** Each payment webhook is delivered this many times at once. Default 1. */
  webhookCopies?: number;
  /** Deliver each batch of payment webhooks in a random order, from this seed. */
  webhookShuffleSeed?: number;
  /** Task lease of every client (ms): how soon a dead worker's task moves on. Default 1000. */
  ttlMs?: number;
  /** Extra environment for workers and API. */
  env?: Record<string, string>;
  /** Extra environment per worker group. */
  groupEnv?: Record<string, Record<string, string>>;
  apiEnv?: Record<string, string>;
}

/** A restartable API process on a fixed port. */
export interface RestartableApi {
  readonly url: string;
  readonly process: ApiProcess;
  kill(): Promise<void>;
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
  readonly probeLog: string;
  readonly paymentLedger: string;
  readonly carrierLedger: string;
  readonly databasePath: string;
  /** Charges, shipments and order rows recorded for one order id. */
  effects(orderId: string): { charges: number; shipments: number; rows: number };
  /** The invariant report over the given accepted workflow ids. */
  report(workflows: string[], webhooks?: WebhookTally): Promise<InvariantReport>;
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
    const server = await startResonateServer({
      dbPath: join(dataDir, "resonate.db"),
      retryTimeoutMs: 1_000,
      tickMs: 100,
    });
    scope.defer(() => server.stop());
    const apiPort = freePort();
    const apiUrl = `http://127.0.0.1:${apiPort}`;
    const env = {
      RESONATE_URL: server.url,
      WEBHOOK_SECRET: CHAOS_SECRET,
      PAYMENT_URL: "http://payment.fake",
      CARRIER_URL: "http://carrier.fake",
      FAKES_LEDGER_DIR: ledgers,
      DATA_DIR: dataDir,
      RESONATE_TTL_MS: String(opts.ttlMs ?? 1_000),
      PROBE_LOG: join(dataDir, "probes.ndjson"),
      CRASH_DIR: join(dataDir, "crashes"),
      CRASH_AT: opts.crashAt ?? "",
      ...opts.env,
    };
    const pool = await startWorkerPool({
      groups: opts.groups ?? { "order-workers": 1, "pricing-workers": 1, db: 1, business: 1 },
      env,
      groupEnv: opts.groupEnv,
    });
    scope.defer(() => pool.stop());

    const launchApi = () => spawnApi({ env: { ...env, ...opts.apiEnv, PORT: String(apiPort) } });
    let apiProcess = await launchApi();
    scope.defer(() => apiProcess.stop());
    const api: RestartableApi = {
      url: apiUrl,
      get process() {
        return apiProcess;
      },
      async kill() {
        apiProcess.kill("SIGKILL");
        await apiProcess.exited;
      },
      async restart() {
        await apiProcess.stop();
        apiProcess = await launchApi();
      },
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
      pool,
      api,
      probeLog: env.PROBE_LOG,
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
      report: (workflows, webhooks) =>
        checkInvariants({
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
