/**
 * Starts the whole system on one machine with embedded defaults.
 *
 *   npm start            (or: bun harness/start.ts)
 *
 * - the harness Resonate server on RESONATE_PORT (8001), state in DATA_DIR
 *   (.data/resonate.db), unless RESONATE_URL points at a running server; with
 *   RESONATE_BIN, the real server that names instead (.data/resonate-real.db);
 * - the sandbox payment provider and carrier on SANDBOX_PORT (4010), ledgers
 *   in DATA_DIR/sandbox, unless PAYMENT_URL / CARRIER_URL are set;
 * - WORKERS_PER_GROUP worker processes for each group (restarted if they die),
 *   or none with MODE=colocated;
 * - the API on PORT (3000), on Bun, or on Deno with API_RUNTIME=deno
 *   (`npm run start:deno`).
 *
 * Ctrl-C (SIGINT) or SIGTERM stops the API, then the workers, then the
 * sandbox and the server. Starting again resumes everything in flight.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, GROUPS, loadConfig } from "../src/config.ts";
import { exitWithParent } from "../src/parent-process.ts";
import { startSandbox } from "./fakes/sandbox.ts";
import type { ChildProcess } from "./process.ts";
import { defaultServerKind, type ResonateServer, startResonateServer } from "./resonate-server.ts";
import { API_RUNTIMES, type ApiProcess, isApiRuntime, spawnApi, spawnWorker } from "./service.ts";

let config: ReturnType<typeof loadConfig>;
try {
  config = loadConfig();
} catch (error) {
  console.error(error instanceof ConfigError ? `start: ${error.message}` : error);
  process.exit(2);
}
// The launcher's own setting (the API never reads it): which runtime the API process runs on.
const apiRuntime = process.env.API_RUNTIME || "bun";
if (!isApiRuntime(apiRuntime)) {
  console.error(
    `start: API_RUNTIME must be one of ${API_RUNTIMES.join(", ")}, got "${process.env.API_RUNTIME}"`,
  );
  process.exit(2);
}

/** WEBHOOK_SECRET, else the one kept in DATA_DIR from an earlier start, else a new one kept there. */
function webhookSecretFor(dataDir: string, configured: string | undefined): string {
  if (configured) return configured;
  const file = join(dataDir, "webhook-secret");
  if (existsSync(file)) return readFileSync(file, "utf8").trim();
  const secret = `whsec_${randomBytes(24).toString("base64")}`;
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  console.log(
    `start: WEBHOOK_SECRET was not set; generated one and kept it in ${file}:\n  WEBHOOK_SECRET=${secret}`,
  );
  return secret;
}
const webhookSecret = webhookSecretFor(config.dataDir, config.webhookSecret);

let server: ResonateServer | undefined;
let stopping = false;
const workers = new Set<ChildProcess>();
let api: ApiProcess | undefined;

let resonateUrl = config.resonateUrl;
if (!resonateUrl) {
  // The two servers' state files have different layouts, so each keeps its own.
  const real = defaultServerKind() === "real";
  server = await startResonateServer({
    port: config.resonatePort,
    dbPath: join(config.dataDir, real ? "resonate-real.db" : "resonate.db"),
  });
  resonateUrl = server.url;
  console.log(`start: ${real ? "real " : ""}resonate server ${resonateUrl} (state in ${server.dbPath})`);
} else {
  console.log(`start: using the Resonate server at ${resonateUrl}`);
}

const apiBase = `http://127.0.0.1:${config.port}`;
const usesSandbox = !process.env.PAYMENT_URL || !process.env.CARRIER_URL;
const sandbox = usesSandbox
  ? startSandbox({
      port: Number(new URL(config.paymentUrl).port),
      dataDir: join(config.dataDir, "sandbox"),
      webhookUrl: `${apiBase}/webhooks/payment`,
      webhookSecret,
    })
  : undefined;
if (sandbox)
  console.log(`start: sandbox payment provider ${sandbox.paymentUrl}, carrier ${sandbox.carrierUrl}`);

const childEnv = {
  RESONATE_URL: resonateUrl,
  WEBHOOK_SECRET: webhookSecret,
  PAYMENT_URL: config.paymentUrl,
  CARRIER_URL: config.carrierUrl,
  DATA_DIR: config.dataDir,
  DATABASE_URL: config.databaseUrl,
};

/**
 * Keeps one worker slot filled: when its process dies unexpectedly, a new
 * one starts after a short pause. `onFirstReady` is called once, when the
 * slot's first process is ready.
 */
async function superviseWorker(group: string, slot: number, onFirstReady: () => void): Promise<void> {
  let backoffMs = 500;
  while (!stopping) {
    let child: ChildProcess;
    try {
      [child] = (await spawnWorker({ group, env: childEnv })) as [ChildProcess];
    } catch (error) {
      console.error(`start: worker ${group}#${slot} failed to start: ${(error as Error).message}`);
      await Bun.sleep(backoffMs);
      backoffMs = Math.min(backoffMs * 2, 10_000);
      continue;
    }
    backoffMs = 500;
    if (stopping) {
      await child.stop();
      return;
    }
    workers.add(child);
    console.log(`start: worker ${group}#${slot} pid ${child.pid}`);
    onFirstReady();
    const code = await child.exited;
    workers.delete(child);
    if (stopping) return;
    console.error(
      `start: worker ${group}#${slot} (pid ${child.pid}) exited with ${code}; restarting\n${child.output().slice(-2000)}`,
    );
    await Bun.sleep(backoffMs);
  }
}

const supervisors: Promise<void>[] = [];
const workersReady: Promise<void>[] = [];
if (!config.colocated) {
  for (const group of GROUPS) {
    for (let slot = 0; slot < config.workersPerGroup; slot++) {
      const { promise, resolve } = Promise.withResolvers<void>();
      workersReady.push(promise);
      supervisors.push(superviseWorker(group, slot, resolve));
    }
  }
}

try {
  api = await spawnApi({
    runtime: apiRuntime,
    env: { ...childEnv, PORT: String(config.port), MODE: config.colocated ? "colocated" : "distributed" },
  });
} catch (error) {
  console.error(`start: the API (on ${apiRuntime}) did not start: ${(error as Error).message}`);
  await shutdown(1);
}
if (api) console.log(`start: API on ${api.runtime}, pid ${api.pid}`);
if (sandbox && api) sandbox.payment.webhookUrl = `${api.url}/webhooks/payment`;
await Promise.all(workersReady);
console.log(
  `\nready: API ${api?.url} on ${api?.runtime}   docs ${api?.url}/docs   (Ctrl-C stops everything)\n`,
);

async function shutdown(code = 0): Promise<never> {
  if (!stopping) {
    stopping = true;
    console.log("start: stopping");
    await api?.stop();
    await Promise.all([...workers].map((w) => w.stop()));
    await Promise.all(supervisors);
    await sandbox?.stop();
    await server?.stop();
  }
  process.exit(code);
}
process.on("SIGINT", () => void shutdown());
process.on("SIGTERM", () => void shutdown());
// A launcher whose own parent (npm, a shell) was killed stops what it started.
exitWithParent(() => shutdown(), true);
api?.exited.then((code) => {
  if (!stopping) {
    console.error(`start: the API exited with ${code}:\n${api?.output().slice(-2000)}`);
    void shutdown(1);
  }
});
