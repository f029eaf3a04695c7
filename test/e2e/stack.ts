import { join } from "node:path";
import {
  type ApiProcess,
  type ApiRuntime,
  type ChildProcess,
  type ResonateServer,
  type Sandbox,
  spawnApi,
  spawnWorker,
  startResonateServer,
  startSandbox,
  waitFor,
} from "../../harness/index.ts";
import { openScope } from "../../harness/scope.ts";
import { GROUPS } from "../../src/config.ts";

export const STACK_SECRET = `whsec_${Buffer.from("end-to-end-secret-0123456789abcd").toString("base64")}`;

export interface Stack extends AsyncDisposable {
  server: ResonateServer;
  sandbox: Sandbox;
  api: ApiProcess;
  workers: ChildProcess[];
  dataDir: string;
  env: Record<string, string>;
  stop(): Promise<void>;
}

/**
 * The whole system as separate processes: a Resonate server, one worker
 * process per group in `groups`, the API (on `apiRuntime`, Bun by default),
 * and the sandbox third parties in this process. Everything on OS-chosen
 * ports, in a fresh data folder.
 */
export async function startStack(
  opts: {
    apiRuntime?: ApiRuntime;
    groups?: readonly string[];
    env?: Record<string, string>;
    apiEnv?: Record<string, string>;
    workerEnv?: Record<string, Record<string, string>>;
  } = {},
): Promise<Stack> {
  const scope = openScope("stack-");
  const dataDir = scope.dir;
  const stop = () => scope.close();
  try {
    const server = await startResonateServer({
      dbPath: join(dataDir, "resonate.db"),
      retryTimeoutMs: 2_000,
      tickMs: 100,
    });
    scope.defer(() => server.stop());
    const sandbox = startSandbox({
      dataDir: join(dataDir, "sandbox"),
      webhookUrl: "http://127.0.0.1:9/not-listening-yet",
      webhookSecret: STACK_SECRET,
      webhookDelayMs: 50,
    });
    scope.defer(() => sandbox.stop());
    const env = {
      RESONATE_URL: server.url,
      WEBHOOK_SECRET: STACK_SECRET,
      PAYMENT_URL: sandbox.paymentUrl,
      CARRIER_URL: sandbox.carrierUrl,
      DATA_DIR: dataDir,
      RESONATE_TTL_MS: "2000",
      ...opts.env,
    };
    const workers: ChildProcess[] = [];
    scope.defer(() => Promise.all(workers.map((w) => w.stop())));
    for (const group of opts.groups ?? GROUPS) {
      workers.push(...(await spawnWorker({ group, env: { ...env, ...opts.workerEnv?.[group] } })));
    }
    const api = await spawnApi({ runtime: opts.apiRuntime, env: { ...env, ...opts.apiEnv } });
    scope.defer(() => api.stop());
    sandbox.payment.webhookUrl = `${api.url}/webhooks/payment`;
    return { server, sandbox, api, workers, dataDir, env, stop, [Symbol.asyncDispose]: stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

export async function call(
  api: { url: string },
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
) {
  const res = await fetch(`${api.url}${path}`, {
    method,
    headers: body === undefined ? headers : { "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    body: (text ? JSON.parse(text) : undefined) as Record<string, unknown>,
  };
}

/** Waits until `GET /jobs/:id` says done and returns the job. */
export function jobDone(api: { url: string }, id: string, timeout = 30_000) {
  return waitFor(
    async () => {
      const job = await call(api, "GET", `/jobs/${id}`);
      return job.body.status === "done" ? job.body : undefined;
    },
    { timeout, message: `${id} done` },
  );
}

/** Waits until `GET <path>` answers 200 and returns the answer. */
export function answers200(api: { url: string }, path: string, timeout = 30_000) {
  return waitFor(
    async () => {
      const res = await call(api, "GET", path);
      return res.status === 200 ? res : undefined;
    },
    { timeout, message: `GET ${path} answers 200` },
  );
}
