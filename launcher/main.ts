/**
 * Starts the whole system on one machine with embedded defaults.
 *
 *   npm start            (or: bun launcher/main.ts)
 *
 * - the harness Resonate server on RESONATE_PORT (8001), state in DATA_DIR
 *   (.data/resonate.db), unless RESONATE_URL points at a running server; with
 *   RESONATE_BIN, the real server that names instead (.data/resonate-real.db;
 *   with RESONATE_STORAGE=postgres, on PostgreSQL: the one RESONATE_POSTGRES_URL
 *   names, else one started here with its data in DATA_DIR/postgres);
 * - the sandbox payment provider and carrier on SANDBOX_PORT (4010), ledgers
 *   in DATA_DIR/sandbox, unless PAYMENT_URL / CARRIER_URL are set;
 * - WORKERS_PER_GROUP worker processes for each group (restarted if they die),
 *   or none with MODE=colocated;
 * - API_PROCESSES API processes (default 1) on PORT (3000), sharing it
 *   (`reusePort`), on Bun, or on Deno with API_RUNTIME=deno
 *   (`npm run start:deno`);
 * - the API checks a bearer JWT from its callers: unless AUTH_PUBLIC_KEY,
 *   AUTH_JWKS or AUTH_DISABLED say otherwise, with a development key pair
 *   kept in DATA_DIR (api-auth-*.pem); a token for `alice` with the operator
 *   scope, valid 30 days, is written to DATA_DIR/api-token at every start;
 * - with RESONATE_AUTH=1, the server checks a JWT on every request: the key
 *   pair is kept in DATA_DIR (resonate-auth-*.pem) and each process gets its
 *   own token (DATA_DIR/resonate-tokens.json, valid 30 days from the start);
 * - with RESONATE_PUSH=1, the server pushes results to each API process's own
 *   listener on 127.0.0.1 (HTTP push, with a bearer token made at each
 *   start) rather than over its message stream.
 *
 * A port of 0 lets the OS pick one; the lines it prints say which. Ctrl-C
 * (SIGINT) or SIGTERM, also while it starts, stops the API, then the
 * workers, then the sandbox and the server. Starting again resumes
 * everything in flight.
 */
import { join } from "node:path";
import { ConfigError, GROUPS, type LauncherConfig, loadLauncherConfig } from "../core/config.ts";
import { exitWithParent } from "../core/parent-process.ts";
import { API_AUTH_DEFAULTS, writeDevToken } from "../harness/api-auth.ts";
import { type SystemEvent, startSystem } from "../harness/system.ts";

let config: LauncherConfig;
try {
  config = loadLauncherConfig();
} catch (error) {
  console.error(error instanceof ConfigError ? `start: ${error.message}` : error);
  process.exit(2);
}
if (config.storage === "postgres" && !config.resonateBin && !config.resonateUrl) {
  console.error(
    "start: RESONATE_STORAGE=postgres needs the real server: set RESONATE_BIN (our server keeps SQLite only)",
  );
  process.exit(2);
}

// RESONATE_PUSH=1: the server started here pushes results to each API process (a token made at each start).
if (config.push && config.resonateUrl) {
  console.error(
    "start: RESONATE_PUSH=1 needs a server npm start starts; for the one at RESONATE_URL, set RESONATE_PUSH_HOST and the token it sends in RESONATE_PUSH_TOKEN",
  );
  process.exit(2);
}
if (config.resonatePush && !config.resonateUrl) {
  console.error(
    "start: RESONATE_PUSH_HOST with a server npm start starts: set RESONATE_PUSH=1 instead (the token is made here and given to both)",
  );
  process.exit(2);
}

/** What the launcher prints as the system starts and runs. */
function report(event: SystemEvent): void {
  switch (event.type) {
    case "secret-generated":
      console.log(
        `start: WEBHOOK_SECRET was not set; generated one and kept it in ${event.file}:\n  WEBHOOK_SECRET=${event.secret}`,
      );
      break;
    case "auth-keys":
      console.log(
        `start: the Resonate server checks tokens: public key ${event.publicKeyPath}${event.created ? " (new; its private half beside it)" : ""}; each process's RESONATE_TOKEN is in ${event.tokensFile} (with an admin one)`,
      );
      break;
    case "server-started":
      console.log(
        `start: ${event.server.kind === "real" ? "real " : ""}resonate server ${event.server.url} (state in ${event.server.storage === "sqlite" ? event.server.dbPath : event.server.postgres ? `${event.server.postgres.url}, data in ${event.server.postgres.dir}` : "the PostgreSQL of RESONATE_POSTGRES_URL"})`,
      );
      break;
    case "sandbox-started":
      console.log(
        `start: sandbox payment provider ${event.sandbox.paymentUrl}, carrier ${event.sandbox.carrierUrl}`,
      );
      break;
    case "worker-ready":
      console.log(`start: worker ${event.slot.group}#${event.slot.index} pid ${event.process.pid}`);
      break;
    case "worker-exited":
      console.error(
        `start: worker ${event.slot.group}#${event.slot.index} (pid ${event.process.pid}) exited with ${event.code}; restarting\n${event.process.output().slice(-2000)}`,
      );
      break;
    case "worker-start-failed":
      console.error(
        `start: worker ${event.slot.group}#${event.slot.index} failed to start: ${event.error.message}`,
      );
      break;
    case "api-started": {
      const metrics = event.api.metricsUrl ? `, metrics ${event.api.metricsUrl}` : "";
      console.log(`start: API on ${event.api.runtime}, pid ${event.api.pid}${metrics}`);
      break;
    }
  }
}

if (config.resonateUrl) console.log(`start: using the Resonate server at ${config.resonateUrl}`);
// A URL that is set is used as it is; the sandbox serves whichever is not.
const paymentUrl = config.givenPaymentUrl;
const carrierUrl = config.givenCarrierUrl;
// Callers' keys the environment names are the API's own; else the development key pair.
const givenAuth = Boolean(config.auth.publicKeyFile || config.auth.jwksFile || config.auth.disabled);
const DEV_TOKEN_DAYS = 30;
const aborter = new AbortController();
const starting = startSystem({
  mode: config.colocated ? "colocated" : "distributed",
  workers: Object.fromEntries(GROUPS.map((group) => [group, config.workersPerGroup])),
  supervise: { restartDelayMs: 500, maxRestartDelayMs: 10_000 },
  server: config.resonateUrl
    ? { url: config.resonateUrl }
    : {
        port: config.resonatePort,
        ...(config.resonateBin
          ? {
              kind: "real" as const,
              bin: config.resonateBin,
              storage: config.storage,
              postgresUrl: config.postgresUrl,
              postgresDataDir: join(config.dataDir, "postgres"),
            }
          : {}),
      },
  apiRuntime: config.apiRuntime,
  apiProcesses: config.apiProcesses,
  apiPort: config.port,
  paymentUrl,
  carrierUrl,
  sandbox: { port: config.sandboxPort },
  dataDir: config.dataDir,
  webhookSecret: config.webhookSecret,
  env: { DATABASE_URL: config.databaseUrl },
  resonateAuth: config.resonateAuth && { expiresInSeconds: 30 * 86_400 },
  push: config.push,
  ...(givenAuth ? { apiAuth: "environment" as const } : {}),
  signal: aborter.signal,
  onEvent: report,
});

let stopping = false;
async function shutdown(code = 0): Promise<never> {
  if (!stopping) {
    stopping = true;
    console.log("start: stopping");
    // Start-up stops what it started when aborted; a system that is up is stopped here.
    aborter.abort(new Error("stopping"));
    await (await starting.catch(() => undefined))?.stop();
  }
  process.exit(code);
}
process.on("SIGINT", () => void shutdown());
process.on("SIGTERM", () => void shutdown());
// A launcher whose own parent (npm, a shell) was killed stops what it started.
exitWithParent(() => shutdown(), true);

const system = await starting.catch((error: Error): undefined => {
  // Aborted by a signal, shutdown() exits once start-up has stopped what it started.
  if (stopping) return undefined;
  console.error(`start: ${error.message.replace(/^startSystem: /, "")}`);
  process.exit(1);
});
if (system?.apiAuth) {
  const dev = await writeDevToken(system.apiAuth, system.dataDir, DEV_TOKEN_DAYS * 86_400);
  console.log(
    [
      `start: the API checks a bearer token on every route but the webhooks, health, docs and metrics (key ${system.apiAuth.publicKeyPath}).`,
      `  A development token (sub ${dev.sub}, scope ${API_AUTH_DEFAULTS.operatorScope}, ${DEV_TOKEN_DAYS} days) is in ${dev.file}:`,
      `    TOKEN=$(cat ${dev.file})`,
      `    curl -H "Authorization: Bearer $TOKEN" ${system.apiUrl}/users/${dev.sub}/orders`,
    ].join("\n"),
  );
} else if (system && config.auth.disabled) {
  console.log("start: AUTH_DISABLED=1: the API lets every caller in, as an operator");
}
if (system) {
  const { api, apis } = system;
  const processes = apis.length > 1 ? ` (${apis.length} processes)` : "";
  console.log(
    `\nready: API ${api.url}${processes} on ${api.runtime}   docs ${api.url}/docs   (Ctrl-C stops everything)\n`,
  );
  for (const [index, process] of apis.entries()) {
    void process.exited.then((code) => {
      if (!stopping) {
        console.error(`start: API process ${index} exited with ${code}:\n${process.output().slice(-2000)}`);
        void shutdown(1);
      }
    });
  }
}
