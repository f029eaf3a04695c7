/**
 * Every environment variable the service and `npm start` read, as schema
 * values: one per process role (`ROLES`), built from four sections. Each
 * setting's default, range and text are written here only; `core/config.ts`
 * parses them, and docs/configuration.md is written from them
 * (`npm run docs`).
 */
import { Type } from "@sinclair/typebox";
import { flag, httpUrl, integer, oneOf, optional, otelFlag, text } from "./env-schema.ts";

/** The builds of the workflows a process may run (`WORKFLOW_BUILD`). */
export const WORKFLOW_BUILDS = ["current", "next"] as const;
export type WorkflowBuild = (typeof WORKFLOW_BUILDS)[number];

/** What `LOG_LEVEL` may say, most severe first. */
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The samplers of `OTEL_TRACES_SAMPLER` this project supports (the specification's, but Jaeger's and X-Ray's). */
export const TRACE_SAMPLERS = [
  "always_on",
  "always_off",
  "traceidratio",
  "parentbased_always_on",
  "parentbased_always_off",
  "parentbased_traceidratio",
] as const;
export type TraceSampler = (typeof TRACE_SAMPLERS)[number];

/** The OTLP transports of `OTEL_EXPORTER_OTLP_PROTOCOL` this project exports over. */
export const OTLP_PROTOCOLS = ["http/protobuf", "http/json"] as const;
export type OtlpProtocol = (typeof OTLP_PROTOCOLS)[number];

/** The runtimes the API process runs on (`API_RUNTIME`). */
export const API_RUNTIMES = ["bun", "deno"] as const;
export type ApiRuntime = (typeof API_RUNTIMES)[number];

/** Where the real Resonate server keeps its promises (`RESONATE_STORAGE`). */
export const STORAGES = ["sqlite", "postgres"] as const;
export type Storage = (typeof STORAGES)[number];

const PORT_MAX = 65_535;
const DAY_MS = 86_400_000;
const PID = {
  pattern: "^[A-Za-z0-9._-]{1,128}$",
  expected: "1 to 128 letters, digits, '.', '_' or '-'",
};

/** Read by every process of the service: the API and each worker. */
export const SharedSettings = Type.Object({
  RESONATE_URL: optional(
    httpUrl({ description: "a running Resonate server; unset, `npm start` starts ours. Workers require it" }),
  ),
  RESONATE_TOKEN: optional(
    text({
      secret: true,
      description: "bearer token for a Resonate server that asks for one (`--auth-publickey`)",
    }),
  ),
  RESONATE_TIMEOUT: integer(1, 600_000, {
    default: 10_000,
    description: "ms allowed for one request to the server; past it the SDK retries",
  }),
  RESONATE_TTL_MS: integer(500, 3_600_000, {
    default: 10_000,
    description: "task lease of every client (ms): a dead worker's task moves on after this",
  }),
  DATA_DIR: text({
    default: ".data",
    expected: "a folder",
    description: "server state, sandbox ledgers, SQLite database, webhook secret",
  }),
  WORKFLOW_BUILD: oneOf(WORKFLOW_BUILDS, {
    default: "current",
    description:
      "`next`: the deploy drill's test build (`process_order` version 2, with a step more; the API starts it, the order workers register it beside version 1); never deployed",
  }),
  SHUTDOWN_GRACE_MS: integer(0, 120_000, {
    default: 10_000,
    description:
      "after SIGTERM, the most a process takes to finish what it is doing before it exits (ms; [deploying.md](deploying.md))",
  }),
  LOG_LEVEL: oneOf(LOG_LEVELS, {
    default: "info",
    description:
      "the least severe log lines written (`silent`: none); `info` logs one JSON line per request and per durable function start and end",
  }),
  METRICS_PORT: optional(
    integer(0, PORT_MAX, {
      description:
        "serve this process's `/metrics` on a port of its own (`0`: one the OS picks, announced as `worker metrics <group> <pid> <url>` or `api metrics <pid> <url>`); the API serves it on `PORT` too",
    }),
  ),
  METRICS_HOST: text({
    default: "127.0.0.1",
    expected: "a host name or an IP address",
    description: "address the metrics port listens on",
  }),
  METRICS_TOKEN: optional(
    text({
      secret: true,
      description: "when set, `/metrics` (API and workers) needs `Authorization: Bearer <token>`",
    }),
  ),
  OTEL_EXPORTER_OTLP_ENDPOINT: optional(
    httpUrl({
      description:
        "an OTLP/HTTP collector: every process sends its spans to `/v1/traces` under it, one trace per job ([observability.md](observability.md#traces)); unset, no exporter runs",
    }),
  ),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: optional(
    httpUrl({ description: "the traces endpoint itself, taken as given; wins over the one above" }),
  ),
  OTEL_EXPORTER_OTLP_PROTOCOL: oneOf(OTLP_PROTOCOLS, {
    default: "http/protobuf",
    description: "how spans are sent",
  }),
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: optional(
    oneOf(OTLP_PROTOCOLS, { description: "the same for traces; wins over the one above" }),
  ),
  OTEL_SERVICE_NAME: optional(
    text({
      description:
        "the service name on every span; unset, each process names itself (`api`, its worker group)",
    }),
  ),
  OTEL_TRACES_SAMPLER: oneOf(TRACE_SAMPLERS, {
    default: "parentbased_always_on",
    description: "which traces are kept; under `parentbased_*` a caller's `traceparent` decides",
  }),
  OTEL_TRACES_SAMPLER_ARG: Type.Number({
    minimum: 0,
    maximum: 1,
    default: 1,
    expected: "a ratio from 0 to 1",
    description: "the ratio of the `traceidratio` samplers",
  }),
  OTEL_BSP_SCHEDULE_DELAY: integer(0, 3_600_000, {
    default: 5000,
    description: "ms between two exports of the span batch",
  }),
  OTEL_BSP_EXPORT_TIMEOUT: integer(1, 3_600_000, {
    default: 30_000,
    description: "ms one export may take",
  }),
  OTEL_BSP_MAX_QUEUE_SIZE: integer(1, 1_000_000, {
    default: 2048,
    description: "spans kept waiting for export; past it new ones are dropped",
  }),
  OTEL_BSP_MAX_EXPORT_BATCH_SIZE: integer(1, 1_000_000, {
    default: 512,
    description: "spans per export, at most the queue size",
  }),
  OTEL_SDK_DISABLED: otelFlag({ description: "`true`: no traces, whatever else is set" }),
  OTEL_TRACES_EXPORTER: oneOf(["otlp", "none"], { default: "otlp", description: "`none`: no traces" }),
  EXIT_WITH_PARENT: flag({
    description: "`1` (set by `npm start` and the harness): stop when the parent process is gone",
  }),
});

/** Read by each worker, and by an API that runs every durable function itself (`MODE=colocated`). */
export const WorkerSettings = Type.Object({
  WORKER_PID: optional(
    text({
      ...PID,
      shownDefault: "`<group>-<host>-<pid>-<random>`",
      description:
        "the worker's Resonate pid (`/poll/<group>/<pid>`); must differ between any two processes ([deploying.md](deploying.md#pids))",
    }),
  ),
  DATABASE_URL: optional(
    text({
      pattern: "^(sqlite|postgres|postgresql)://",
      expected: "a sqlite:// or postgres:// URL",
      shownDefault: "`sqlite://$DATA_DIR/app.db`",
      description: "the `db` group's database, `sqlite://<file>` or `postgres://…`",
    }),
  ),
  SANDBOX_PORT: integer(0, PORT_MAX, {
    default: 4010,
    description: "port of the sandbox third parties (`npm start` starts them there)",
  }),
  PAYMENT_URL: optional(
    httpUrl({
      shownDefault: "`http://127.0.0.1:$SANDBOX_PORT/payment`",
      description: "the payment provider",
    }),
  ),
  CARRIER_URL: optional(
    httpUrl({ shownDefault: "`http://127.0.0.1:$SANDBOX_PORT/carrier`", description: "the carrier" }),
  ),
  PRICE_REFRESH_MS: integer(100, DAY_MS, {
    default: 30_000,
    description: "how often a pricing worker rereads the price list from `db`",
  }),
  SHIP_COOLING_OFF_MS: integer(0, 30 * DAY_MS, {
    default: 0,
    description: "durable sleep between an approval and the shipment",
  }),
  PRICING_DELAY_MS: integer(0, 600_000, {
    default: 0,
    description:
      "extra time each `compute_quote` takes, in a step (to see the `202` path); the API passes its own with each quote it starts",
  }),
});

/** Read by the API only. */
export const ApiSettings = Type.Object({
  PORT: integer(0, PORT_MAX, { default: 3000, description: "API port" }),
  HOST: text({
    default: "127.0.0.1",
    expected: "a host name or an IP address",
    description: "address the API listens on",
  }),
  MODE: oneOf(["distributed", "colocated"], {
    default: "distributed",
    description: "`colocated`: every durable function runs in the API process",
  }),
  API_PID: optional(
    text({
      ...PID,
      shownDefault: "`api-<host>-<pid>-<random>`",
      description:
        "the API's Resonate pid; must differ between any two processes ([deploying.md](deploying.md#pids))",
    }),
  ),
  WEBHOOK_SECRET: optional(
    text({
      pattern: "^whsec_[A-Za-z0-9+/]+={0,2}$",
      expected: "a Standard Webhooks secret: whsec_ followed by base64",
      secret: true,
      shownDefault: "generated by `npm start`",
      description: "Standard Webhooks secret shared with the webhook senders; the API requires it",
    }),
  ),
  QUOTE_DEADLINE_MS: integer(1, 600_000, {
    default: 1000,
    description: "how long `POST /price-quote` waits before `202`",
  }),
  QUOTE_MAX_WAIT_MS: integer(1, 600_000, {
    default: 10_000,
    description: "the most a client may ask for with `Prefer: wait=` (not below the deadline)",
  }),
  QUOTE_TIMEOUT_MS: integer(1, 3_600_000, {
    default: 5000,
    description: "a quote workflow's own timeout (then `504`)",
  }),
  QUOTE_VALIDITY_MS: integer(1, DAY_MS, {
    default: 60_000,
    description: "window in which identical quote requests share a quote",
  }),
  QUOTE_MAX_WAITING: integer(1, 1_000_000, {
    default: 200,
    description: "waiting quote requests before new ones get `503`",
  }),
  JOB_MAX_WAIT_MS: integer(1, 3_600_000, {
    default: 60_000,
    description: "the most `GET /jobs/:id` waits for `Prefer: wait=`",
  }),
  JOB_EVENTS_MAX_MS: integer(100, DAY_MS, {
    default: 300_000,
    description:
      "longest a `GET /jobs/:id/events` stream stays open; the client then reconnects with `Last-Event-ID`",
  }),
  WORKFLOW_TIMEOUT_MS: integer(1000, 30 * DAY_MS, {
    default: 3_600_000,
    description: "timeout of order, approval and checkout workflows",
  }),
  SHUTDOWN_LISTEN_MS: integer(0, 60_000, {
    default: 1000,
    description:
      "after SIGTERM, how long the API still takes new connections, answering with `Connection: close`, before it stops listening (within the grace)",
  }),
  BODY_LIMIT_BYTES: integer(1024, 64 * 2 ** 20, {
    default: 65_536,
    description: "largest request body a route reads; larger: `413` before it is read whole",
  }),
  BODY_TIMEOUT_MS: integer(100, 600_000, {
    default: 10_000,
    description: "time a request body has to arrive whole; then `408` and the connection closes",
  }),
  MAX_REQUESTS_IN_FLIGHT: integer(1, 1_000_000, {
    default: 1000,
    description: "requests the API serves at once; one more: `503` with `Retry-After` at once",
  }),
  BENCH_ROUTES: flag({ description: "`1` mounts `/bench/*`: the load tool's baseline and memory probe" }),
  RESONATE_PUSH_HOST: optional(
    text({
      pattern: "^[A-Za-z0-9.-]+$|^\\[?[0-9A-Fa-f:.]+\\]?$",
      expected: "a host name or an IP address",
      description:
        "results come by HTTP push to a listener of the process's own on this address (which the server must reach), not over its message stream ([deploying.md](deploying.md#results-by-http-push))",
    }),
  ),
  RESONATE_PUSH_PORT: integer(0, PORT_MAX, {
    default: 0,
    description: "that listener's port (0: one the OS picks; the registered address carries it)",
  }),
  RESONATE_PUSH_TOKEN: optional(
    text({
      pattern: "^\\S{16,}$",
      expected: "at least 16 characters, no spaces (the Resonate server's --transports-http-push-auth-token)",
      secret: true,
      description: "required with `RESONATE_PUSH_HOST`: the bearer token the server sends",
    }),
  ),
  AUTH_PUBLIC_KEY: optional(
    text({
      expected: "a file",
      shownDefault: "made by `npm start`",
      description:
        "PEM public key (SPKI) the API verifies callers' bearer JWTs with ([security.md](security.md))",
    }),
  ),
  AUTH_JWKS: optional(
    text({ expected: "a file", description: 'a JWKS file (`{"keys": [...]}`) instead of `AUTH_PUBLIC_KEY`' }),
  ),
  AUTH_ISSUER: optional(
    text({
      shownDefault: "`resonate-bun-edge-dev` with `npm start`'s key",
      description: "the `iss` a token must carry; required with a key",
    }),
  ),
  AUTH_AUDIENCE: optional(
    text({
      shownDefault: "`resonate-bun-edge` with `npm start`'s key",
      description: "the `aud` a token must carry (or list); required with a key",
    }),
  ),
  AUTH_CLOCK_SKEW_S: integer(0, 300, {
    default: 30,
    description: "how far `exp` and `nbf` may be off the API's clock (s)",
  }),
  AUTH_OPERATOR_SCOPE: text({
    default: "operator",
    pattern: "^[\\x21\\x23-\\x5b\\x5d-\\x7e]+$",
    expected: "one scope token (no spaces or quotes)",
    description: "the `scope` that sees, lists and cancels every caller's jobs",
  }),
  AUTH_DISABLED: flag({
    description:
      "`1`: no token checked, every caller an operator (the API refuses to start with neither this nor a key; never on a shared network)",
  }),
});

/** Read by `npm start` only; it checks the others too before it starts anything. */
export const LauncherSettings = Type.Object({
  RESONATE_PORT: integer(0, PORT_MAX, {
    default: 8001,
    description: "port of the server `npm start` starts",
  }),
  RESONATE_BIN: optional(
    text({
      expected: "an executable file",
      description: "a real `resonate` binary: `npm start` and the harness run it instead of ours",
    }),
  ),
  RESONATE_STORAGE: oneOf(STORAGES, {
    default: "sqlite",
    description: "with `RESONATE_BIN`: `postgres` runs the real server on PostgreSQL",
  }),
  RESONATE_POSTGRES_URL: optional(
    text({
      pattern: "^postgres(ql)?://",
      expected: "a postgres:// URL",
      description:
        "the PostgreSQL the real server uses with `RESONATE_STORAGE=postgres`; unset, one is started from the embedded PostgreSQL, its data in `DATA_DIR/postgres`",
    }),
  ),
  RESONATE_AUTH: flag({
    description:
      "`1` starts the server with `--auth-publickey` (key pair kept in `DATA_DIR`) and gives every process a token ([harness-server.md](harness-server.md#authentication))",
  }),
  RESONATE_PUSH: flag({
    description:
      "`1` turns HTTP push on between the server it starts and each API process, with a token made at each start",
  }),
  API_RUNTIME: oneOf(API_RUNTIMES, {
    default: "bun",
    description: "the API on `bun` (`src/main.ts`) or `deno` (`src/main.deno.ts`)",
  }),
  WORKERS_PER_GROUP: integer(1, 64, { default: 1, description: "worker processes per group" }),
  API_PROCESSES: integer(1, 64, {
    default: 1,
    description: "API processes sharing `PORT` (`reusePort` on Bun and Deno)",
  }),
});

/** The settings each kind of process reads: a worker, the API (which may run the workers' functions itself), and `npm start`. */
export const ROLES = {
  worker: Type.Object({ ...SharedSettings.properties, ...WorkerSettings.properties }),
  api: Type.Object({ ...SharedSettings.properties, ...WorkerSettings.properties, ...ApiSettings.properties }),
  launcher: Type.Object({
    ...SharedSettings.properties,
    ...WorkerSettings.properties,
    ...ApiSettings.properties,
    ...LauncherSettings.properties,
  }),
};
