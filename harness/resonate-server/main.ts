/**
 * A Resonate server on one SQLite file and its commit log.
 *
 *   bun harness/resonate-server/main.ts --port 8001 --db .data/resonate.db [--trace trace.ndjson]
 *     [--log-segment-bytes 8388608] [--synchronous full|normal] [--observability-metrics-port 9090]
 *
 * Prints `resonate server listening on http://127.0.0.1:<port>` once it
 * accepts requests (`--port 0` picks a free port) and stops cleanly on
 * SIGTERM or SIGINT. Flags mirror `resonate serve` where the real server has
 * one, with the same meaning: --tasks-lease-timeout, --tasks-retry-timeout,
 * --timeouts-poll-interval, --messages-poll-interval, --messages-batch-size,
 * --transports-http-poll-max-connections, --debug,
 * --transports-http-push-enabled true|false, --transports-http-push-connect-timeout,
 * --transports-http-push-request-timeout, --transports-http-push-auth-mode none|bearer,
 * --transports-http-push-auth-token, --transports-http-push-auth-header (push.ts;
 * --transports-http-push-concurrency is accepted and unused, as there),
 * --auth-publickey <pem file|none>, --auth-iss, --auth-aud (a JWT on every
 * request: auth.ts), --observability-metrics-port (also RESONATE_OBSERVABILITY__METRICS_PORT, as
 * there; 0 is none, and none is the default here, where the real server's is
 * 9090: many of these servers run at once in the tests); and
 * --transports-http-poll-keepalive-interval, which the real server lacks.
 * With a metrics port it prints `resonate server metrics on <url>` and serves
 * the metrics of `metrics.ts` there; one it cannot listen on is reported and
 * the server goes on without it, as the real one does.
 */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { type MetricsServer, serveMetrics } from "../../core/observability/metrics-server.ts";
import { exitWithParent } from "../../core/parent-process.ts";
import { parseFlags } from "../cli.ts";
import { Authenticator } from "./auth.ts";
import { serveProtocol } from "./http.ts";
import { SYNCHRONOUS_MODES } from "./log.ts";
import { ServerMetrics } from "./metrics.ts";
import { HTTP_PUSH_DEFAULTS, type HttpPushOptions } from "./push.ts";
import { ProtocolServer, SERVER_DEFAULTS, type ServerOptions } from "./server.ts";

const ms = (fallback: number) =>
  ({
    type: "number",
    min: 1,
    integer: true,
    expected: "a positive number of milliseconds",
    default: fallback,
  }) as const;
const { values } = parseFlags(
  {
    port: { type: "number", min: 0, max: 65535, integer: true, expected: "0-65535", default: 8001 },
    host: { type: "string", default: "127.0.0.1" },
    db: { type: "string", default: ".data/resonate.db" },
    trace: { type: "string" },
    "tasks-lease-timeout": ms(SERVER_DEFAULTS.leaseTimeoutMs),
    "tasks-retry-timeout": ms(SERVER_DEFAULTS.retryTimeoutMs),
    "timeouts-poll-interval": ms(SERVER_DEFAULTS.tickMs),
    "messages-poll-interval": ms(SERVER_DEFAULTS.messagesPollIntervalMs),
    "messages-batch-size": {
      type: "number",
      min: 1,
      integer: true,
      expected: "a positive number of messages",
      default: SERVER_DEFAULTS.messagesBatchSize,
    },
    "transports-http-poll-keepalive-interval": ms(SERVER_DEFAULTS.keepAliveMs),
    "transports-http-poll-max-connections": {
      type: "number",
      min: 1,
      integer: true,
      expected: "a positive number of connections",
      default: SERVER_DEFAULTS.maxConnections,
    },
    // clap's `Option<bool>` there: exactly `true` or `false`.
    "transports-http-push-enabled": { type: "enum", values: ["true", "false"], default: "true" },
    // v0.9.8 parses it (default 16) and never reads it: pushes go out one at a time from the delivery loop.
    "transports-http-push-concurrency": {
      type: "number",
      min: 0,
      integer: true,
      expected: "a whole number of deliveries",
      default: 16,
    },
    "transports-http-push-connect-timeout": ms(HTTP_PUSH_DEFAULTS.connectTimeoutMs),
    "transports-http-push-request-timeout": ms(HTTP_PUSH_DEFAULTS.requestTimeoutMs),
    "transports-http-push-auth-mode": { type: "string" },
    "transports-http-push-auth-token": { type: "string" },
    "transports-http-push-auth-header": { type: "string" },
    "max-body-bytes": {
      type: "number",
      min: 1,
      integer: true,
      expected: "a positive number of bytes",
      default: SERVER_DEFAULTS.maxBodyBytes,
    },
    "log-segment-bytes": {
      type: "number",
      min: 1,
      integer: true,
      expected: "a positive number of bytes",
      default: SERVER_DEFAULTS.segmentBytes,
    },
    synchronous: { type: "enum", values: SYNCHRONOUS_MODES, default: SERVER_DEFAULTS.synchronous },
    debug: { type: "boolean" },
    "auth-publickey": { type: "string" },
    "auth-iss": { type: "string" },
    "auth-aud": { type: "string" },
    "observability-metrics-port": {
      type: "number",
      min: 0,
      max: 65535,
      integer: true,
      expected: "0-65535 (0: no metrics port)",
    },
  },
  {
    tool: "resonate server",
    usage: "bun harness/resonate-server/main.ts [--port <n>] [--db <file>] [flags]",
  },
);

/** Refuses to go on with exit 2, as a bad flag does. */
function fail(message: string): never {
  console.error(`resonate server: ${message}`);
  process.exit(2);
}

const port = values.port;
const dbPath = values.db;
mkdirSync(dirname(dbPath), { recursive: true });

/** The metrics port: the flag, else the real server's environment variable; 0 or neither is none. */
function readMetricsPort(): number {
  const flag = values["observability-metrics-port"];
  if (flag !== undefined) return flag;
  const raw = process.env.RESONATE_OBSERVABILITY__METRICS_PORT?.trim();
  if (!raw) return 0;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n > 65535)
    fail(`RESONATE_OBSERVABILITY__METRICS_PORT must be 0-65535, got "${raw}"`);
  return n;
}
const metricsPort = readMetricsPort();
const metrics = metricsPort > 0 ? new ServerMetrics() : undefined;

/** Tokens are checked once a key is given, as on the real server (`--auth-iss`/`--auth-aud` alone change nothing). */
function loadAuth(): Authenticator | undefined {
  const publicKey = values["auth-publickey"];
  if (publicKey === undefined) return undefined;
  try {
    return new Authenticator({ publicKey, issuer: values["auth-iss"], audience: values["auth-aud"] });
  } catch (error) {
    fail((error as Error).message);
  }
}
const auth = loadAuth();

/**
 * The header pushes carry. The real server reads the token and header only
 * with `--transports-http-push-auth-mode`, takes any mode it does not know
 * for `none`, and with `bearer` and no token sends `Bearer ` alone; each of
 * those is refused here, so a setting that would push without the intended
 * token stops the server instead. `gcp` (a Google ID token per push) is not
 * supported.
 */
function pushAuth(): HttpPushOptions["auth"] {
  const mode = values["transports-http-push-auth-mode"];
  const token = values["transports-http-push-auth-token"];
  const header = values["transports-http-push-auth-header"];
  if (mode === "gcp")
    fail(
      "--transports-http-push-auth-mode gcp (a Google ID token per push) is not supported by this server; use none or bearer",
    );
  if (mode !== undefined && mode !== "none" && mode !== "bearer")
    fail(`--transports-http-push-auth-mode must be one of none, bearer, got "${mode}"`);
  if (mode !== "bearer") {
    if (token !== undefined || header !== undefined)
      fail(
        "--transports-http-push-auth-token and --transports-http-push-auth-header need --transports-http-push-auth-mode bearer",
      );
    return undefined;
  }
  if (token === undefined || token === "")
    fail("--transports-http-push-auth-mode bearer needs --transports-http-push-auth-token <token>");
  if (header === "") fail("--transports-http-push-auth-header must not be empty");
  return { header: header ?? "Authorization", value: `Bearer ${token}` };
}
const httpPush: HttpPushOptions = {
  enabled: values["transports-http-push-enabled"] === "true",
  connectTimeoutMs: values["transports-http-push-connect-timeout"],
  requestTimeoutMs: values["transports-http-push-request-timeout"],
  auth: pushAuth(),
};

const maxBodyBytes = values["max-body-bytes"];
const options: ServerOptions = {
  dbPath,
  tracePath: values.trace,
  leaseTimeoutMs: values["tasks-lease-timeout"],
  retryTimeoutMs: values["tasks-retry-timeout"],
  tickMs: values["timeouts-poll-interval"],
  messagesPollIntervalMs: values["messages-poll-interval"],
  messagesBatchSize: values["messages-batch-size"],
  keepAliveMs: values["transports-http-poll-keepalive-interval"],
  maxConnections: values["transports-http-poll-max-connections"],
  maxBodyBytes,
  segmentBytes: values["log-segment-bytes"],
  synchronous: values.synchronous,
  debug: values.debug,
  metrics,
  auth,
  httpPush,
  onFatal: (error) => {
    console.error("resonate server: storage failure, stopping so a restart reloads from disk:", error);
    process.exit(1);
  },
};
let server: ProtocolServer;
try {
  server = new ProtocolServer(options);
} catch (error) {
  fail(`cannot open the state file ${dbPath}: ${(error as Error).message}`);
}

let http: ReturnType<typeof serveProtocol>;
try {
  http = serveProtocol(server, { hostname: values.host, port, maxBodyBytes });
} catch (error) {
  fail(`cannot listen on ${values.host}:${port}: ${(error as Error).message}`);
}
server.start();
if (auth) console.log(`resonate server: tokens checked against ${values["auth-publickey"]}`);
console.log(`resonate server listening on http://${http.hostname}:${http.port}`);
let metricsServer: MetricsServer | undefined;
if (metrics) {
  try {
    metricsServer = serveMetrics(metrics.registry, { hostname: values.host, port: metricsPort });
    console.log(`resonate server metrics on ${metricsServer.url}`);
  } catch (error) {
    console.error(
      `resonate server: cannot serve metrics on ${values.host}:${metricsPort}, going on without: ${(error as Error).message}`,
    );
  }
}

let stopping = false;
async function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  console.log(`resonate server: ${signal}, stopping`);
  server.hub.closeAll();
  await metricsServer?.stop();
  await http.stop(true);
  await server.stop();
  process.exit(0);
}
process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));
exitWithParent(() => shutdown("parent gone"));
