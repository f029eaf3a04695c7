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
import { exitWithParent } from "../../src/parent-process.ts";
import { parseFlags } from "../cli.ts";
import { serveProtocol } from "./http.ts";
import { SYNCHRONOUS_MODES } from "./log.ts";
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
  },
  { tool: "resonate server", usage: "bun harness/server/main.ts [--port <n>] [--db <file>] [flags]" },
);

/** Refuses to go on with exit 2, as a bad flag does. */
function fail(message: string): never {
  console.error(`resonate server: ${message}`);
  process.exit(2);
}

const port = values.port;
const dbPath = values.db;
mkdirSync(dirname(dbPath), { recursive: true });

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
