/**
 * A Resonate server on one SQLite file and its commit log.
 *
 *   bun harness/server/main.ts --port 8001 --db .data/resonate.db [--trace trace.ndjson]
 *     [--log-segment-bytes 8388608] [--synchronous full|normal]
 *
 * Prints `resonate server listening on http://127.0.0.1:<port>` once it
 * accepts requests (`--port 0` picks a free port) and stops cleanly on
 * SIGTERM or SIGINT. Flags mirror `resonate serve` where the real server has
 * one, with the same meaning: --tasks-lease-timeout, --tasks-retry-timeout,
 * --timeouts-poll-interval, --messages-poll-interval, --messages-batch-size,
 * --transports-http-poll-max-connections, --debug; and
 * --transports-http-poll-keepalive-interval, which the real server lacks.
 */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { parseArgs } from "node:util";
import { exitWithParent } from "../../src/parent-process.ts";
import { serveProtocol } from "./http.ts";
import { SYNCHRONOUS_MODES, type Synchronous } from "./log.ts";
import { ProtocolServer, SERVER_DEFAULTS, type ServerOptions } from "./server.ts";

function fail(message: string): never {
  console.error(`resonate server: ${message}`);
  process.exit(2);
}

function positive(name: string, raw: string | undefined, fallback: number, unit: string): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) fail(`--${name} must be a positive number of ${unit}, got "${raw}"`);
  return n;
}

let values: Record<string, string | boolean | undefined>;
try {
  ({ values } = parseArgs({
    args: Bun.argv.slice(2),
    options: {
      port: { type: "string", default: "8001" },
      host: { type: "string", default: "127.0.0.1" },
      db: { type: "string", default: ".data/resonate.db" },
      trace: { type: "string" },
      "tasks-lease-timeout": { type: "string" },
      "tasks-retry-timeout": { type: "string" },
      "timeouts-poll-interval": { type: "string" },
      "messages-poll-interval": { type: "string" },
      "messages-batch-size": { type: "string" },
      "transports-http-poll-keepalive-interval": { type: "string" },
      "transports-http-poll-max-connections": { type: "string" },
      "max-body-bytes": { type: "string" },
      "log-segment-bytes": { type: "string" },
      synchronous: { type: "string" },
      debug: { type: "boolean", default: false },
    },
    strict: true,
  }));
} catch (error) {
  fail((error as Error).message);
}

/** The flag `name` as a positive number of `unit`, or `fallback` when it is not given. */
const flag = (name: string, fallback: number, unit = "milliseconds") =>
  positive(name, values[name] as string | undefined, fallback, unit);

const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`--port must be 0-65535, got "${values.port}"`);
const dbPath = String(values.db);
mkdirSync(dirname(dbPath), { recursive: true });

const maxBodyBytes = flag("max-body-bytes", SERVER_DEFAULTS.maxBodyBytes, "bytes");
const synchronous = (values.synchronous ?? SERVER_DEFAULTS.synchronous) as Synchronous;
if (!SYNCHRONOUS_MODES.includes(synchronous))
  fail(`--synchronous must be one of ${SYNCHRONOUS_MODES.join(", ")}, got "${values.synchronous}"`);

const options: ServerOptions = {
  dbPath,
  tracePath: values.trace as string | undefined,
  leaseTimeoutMs: flag("tasks-lease-timeout", SERVER_DEFAULTS.leaseTimeoutMs),
  retryTimeoutMs: flag("tasks-retry-timeout", SERVER_DEFAULTS.retryTimeoutMs),
  tickMs: flag("timeouts-poll-interval", SERVER_DEFAULTS.tickMs),
  messagesPollIntervalMs: flag("messages-poll-interval", SERVER_DEFAULTS.messagesPollIntervalMs),
  messagesBatchSize: flag("messages-batch-size", SERVER_DEFAULTS.messagesBatchSize, "messages"),
  keepAliveMs: flag("transports-http-poll-keepalive-interval", SERVER_DEFAULTS.keepAliveMs),
  maxConnections: flag("transports-http-poll-max-connections", SERVER_DEFAULTS.maxConnections, "connections"),
  maxBodyBytes,
  segmentBytes: flag("log-segment-bytes", SERVER_DEFAULTS.segmentBytes, "bytes"),
  synchronous,
  debug: values.debug === true,
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
  http = serveProtocol(server, { hostname: String(values.host), port, maxBodyBytes });
} catch (error) {
  fail(`cannot listen on ${values.host}:${port}: ${(error as Error).message}`);
}
server.start();
console.log(`resonate server listening on http://${http.hostname}:${http.port}`);

let stopping = false;
async function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  console.log(`resonate server: ${signal}, stopping`);
  server.hub.closeAll();
  await http.stop(true);
  await server.stop();
  process.exit(0);
}
process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));
exitWithParent(() => shutdown("parent gone"));
