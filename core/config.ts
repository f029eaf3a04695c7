import { join, resolve } from "node:path";

/** Worker groups and the durable functions each one registers. */
export const GROUPS = ["order-workers", "pricing-workers", "db", "business"] as const;
export type Group = (typeof GROUPS)[number];

/** The builds of the workflows a process may run (`WORKFLOW_BUILD`). */
export const WORKFLOW_BUILDS = ["current", "next"] as const;
export type WorkflowBuild = (typeof WORKFLOW_BUILDS)[number];

/** What `LOG_LEVEL` may say, most severe first. */
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Where each kind of durable function runs: a group name (`poll://any@<group>`). */
export type Targets = Record<"orders" | "pricing" | "db" | "business", string>;

export interface Config {
  /** API port. */
  port: number;
  /** Resonate server; `undefined` means the launcher starts the harness server on `resonatePort`. */
  resonateUrl: string | undefined;
  resonatePort: number;
  dataDir: string;
  /** `sqlite://<file>` or `postgres://…`, opened by the db group only. */
  databaseUrl: string;
  /** Standard Webhooks secret (`whsec_` + base64) shared with the webhook senders. */
  webhookSecret: string | undefined;
  /** How long POST /price-quote waits before it answers 202 (ms). */
  quoteDeadlineMs: number;
  /** Most a client may ask to wait with `Prefer: wait=<s>` (ms). */
  quoteMaxWaitMs: number;
  /** A quote workflow that has not finished in this long times out (ms). */
  quoteTimeoutMs: number;
  /** Identical quote requests within one window share one quote (ms). */
  quoteValidityMs: number;
  /** Most a client may ask `GET /jobs/:id` to wait with `Prefer: wait=<s>` (ms). */
  jobMaxWaitMs: number;
  /** Longest a `GET /jobs/:id/events` stream stays open; then it ends and the client reconnects with Last-Event-ID (ms). */
  jobEventsMaxMs: number;
  /** Quote requests allowed to wait at once before new ones get 503. */
  quoteMaxWaiting: number;
  /** Timeout of order, approval and checkout workflows (ms). */
  workflowTimeoutMs: number;
  /** Worker processes per group that the launcher runs. */
  workersPerGroup: number;
  /** API processes the launcher runs on the one port (`reusePort`). */
  apiProcesses: number;
  /**
   * This process's Resonate pid (`API_PID` for the API, `WORKER_PID` for a
   * worker); undefined: one made unique across hosts and containers
   * (`uniquePid`).
   */
  apiPid: string | undefined;
  workerPid: string | undefined;
  /** After SIGTERM, how long a process may take to finish what it is doing before it exits regardless (ms). */
  shutdownGraceMs: number;
  /**
   * Which build of the workflows this process runs: `current`, or `next`,
   * the test build the deploy drill rolls to (`process_order` version 2,
   * with a step more; the API starts it, the order workers register it
   * beside version 1).
   */
  workflowBuild: WorkflowBuild;
  /**
   * After SIGTERM, how long the API still takes new connections, answering
   * each request with `Connection: close`, before it stops listening (ms):
   * clients on kept-alive connections and load balancers that have not read
   * `/readyz` yet move on without a reset. Within the grace.
   */
  shutdownListenMs: number;
  /** Run every durable function inside the API process instead of routing to groups. */
  colocated: boolean;
  /** Task lease of every Resonate client (ms). */
  resonateTtlMs: number;
  /** Bearer token for the Resonate server, if it asks for one. */
  resonateToken: string | undefined;
  /** Time allowed for one request to the Resonate server (ms). */
  resonateTimeoutMs: number;
  /**
   * Where the Resonate server pushes this API process's results (HTTP push,
   * `RESONATE_PUSH_HOST`): a listener of its own on `host:port`, registered
   * as `http://host:port/messages/<pid>`, that takes only `Bearer <token>`.
   * `undefined`: results come over the message stream.
   */
  resonatePush: PushSettings | undefined;
  /** Base URLs of the payment provider and the carrier. */
  paymentUrl: string;
  carrierUrl: string;
  /** Extra delay inside compute_quote, for trying the 202 path (ms). */
  pricingDelayMs: number;
  priceRefreshMs: number;
  /** Durable pause between an approval and its shipment (ms). */
  shipCoolingOffMs: number;
  /** Mount the benchmark routes (`/bench/*`): the load tool's baseline and memory probe. */
  benchRoutes: boolean;
  /** The least severe log lines written (`silent`: none). */
  logLevel: LogLevel;
  /** A worker's metrics port (0: one the OS picks); `undefined`: no metrics port. The API serves `GET /metrics` on its own port. */
  metricsPort: number | undefined;
  /** Address a worker's metrics port listens on. */
  metricsHost: string;
  /** When set, `GET /metrics` (the API's and the workers') asks for `Authorization: Bearer <token>`. */
  metricsToken: string | undefined;
  /** Largest request body a route reads (bytes); a larger one is a 413 before it is read whole. */
  bodyLimitBytes: number;
  /** Time a request body has to arrive whole, from the first byte read (ms); then 408 and the connection closes. */
  bodyTimeoutMs: number;
  /** Requests this process serves at once; one more is a 503 at once. */
  maxRequestsInFlight: number;
  /** How the API checks its callers' bearer tokens (read by the API only). */
  auth: AuthSettings;
  /** OpenTelemetry traces (the standard `OTEL_*` variables); `undefined`: none, at no cost. */
  tracing: TracingSettings | undefined;
}

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

/**
 * Where and how spans go, from the standard variables: on when
 * `OTEL_EXPORTER_OTLP_ENDPOINT` (or `…_TRACES_ENDPOINT`) is set and
 * `OTEL_SDK_DISABLED` is not `true`. The exporter reads its own endpoint,
 * headers and timeout variables; the rest is read here, once.
 */
export interface TracingSettings {
  /** `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as given, else `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`. */
  endpoint: string;
  /** `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`, else `OTEL_EXPORTER_OTLP_PROTOCOL`; `http/protobuf` by default. */
  protocol: OtlpProtocol;
  /** `OTEL_SERVICE_NAME`; unset, each process names itself (`api`, its worker group). */
  serviceName: string | undefined;
  /** `OTEL_TRACES_SAMPLER`, `parentbased_always_on` by default, and its ratio (`OTEL_TRACES_SAMPLER_ARG`, 1 by default). */
  sampler: TraceSampler;
  samplerRatio: number;
  /** `OTEL_BSP_SCHEDULE_DELAY`, `OTEL_BSP_EXPORT_TIMEOUT` (ms), `OTEL_BSP_MAX_QUEUE_SIZE`, `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`. */
  batch: {
    scheduledDelayMs: number;
    exportTimeoutMs: number;
    maxQueueSize: number;
    maxExportBatchSize: number;
  };
}

/** The API's HTTP push listener (`RESONATE_PUSH_HOST`, `RESONATE_PUSH_PORT`, `RESONATE_PUSH_TOKEN`). */
export interface PushSettings {
  /** The address it listens on, which the Resonate server must reach this process at. */
  host: string;
  /** Its port; 0: one the OS picks (the registered address carries it). */
  port: number;
  /** The token the server sends (`--transports-http-push-auth-token`); any other request is a 401. */
  token: string;
}

/** Where the API's callers' token keys come from and what their tokens must say. */
export interface AuthSettings {
  /** A PEM file with the public key (SPKI) tokens are signed with; or `jwksFile`. */
  publicKeyFile: string | undefined;
  /** A JWKS file (`{"keys": [...]}`) of the public keys tokens are signed with; or `publicKeyFile`. */
  jwksFile: string | undefined;
  /** The `iss` a token must carry. */
  issuer: string | undefined;
  /** The `aud` a token must carry (or list). */
  audience: string | undefined;
  /** How far `exp` and `nbf` may be off the API's clock (s). */
  clockSkewSeconds: number;
  /** The `scope` that lets a caller read, list and cancel every caller's jobs. */
  operatorScope: string;
  /** `AUTH_DISABLED=1`: every caller is let in as an operator, with no token (never on a shared network). */
  disabled: boolean;
}

export const DEFAULTS = {
  PORT: "3000",
  RESONATE_PORT: "8001",
  DATA_DIR: ".data",
  QUOTE_DEADLINE_MS: "1000",
  QUOTE_MAX_WAIT_MS: "10000",
  QUOTE_TIMEOUT_MS: "5000",
  QUOTE_VALIDITY_MS: "60000",
  QUOTE_MAX_WAITING: "200",
  JOB_MAX_WAIT_MS: "60000",
  JOB_EVENTS_MAX_MS: "300000",
  WORKFLOW_TIMEOUT_MS: "3600000",
  WORKERS_PER_GROUP: "1",
  API_PROCESSES: "1",
  SHUTDOWN_GRACE_MS: "10000",
  SHUTDOWN_LISTEN_MS: "1000",
  WORKFLOW_BUILD: "current",
  MODE: "distributed",
  RESONATE_TTL_MS: "10000",
  RESONATE_TIMEOUT: "10000",
  RESONATE_PUSH_PORT: "0",
  BODY_LIMIT_BYTES: "65536",
  BODY_TIMEOUT_MS: "10000",
  MAX_REQUESTS_IN_FLIGHT: "1000",
  SANDBOX_PORT: "4010",
  PRICING_DELAY_MS: "0",
  PRICE_REFRESH_MS: "30000",
  SHIP_COOLING_OFF_MS: "0",
  LOG_LEVEL: "info",
  METRICS_HOST: "127.0.0.1",
  AUTH_CLOCK_SKEW_S: "30",
  AUTH_OPERATOR_SCOPE: "operator",
  OTEL_BSP_SCHEDULE_DELAY: "5000",
  OTEL_BSP_EXPORT_TIMEOUT: "30000",
  OTEL_BSP_MAX_QUEUE_SIZE: "2048",
  OTEL_BSP_MAX_EXPORT_BATCH_SIZE: "512",
} as const;

export class ConfigError extends Error {
  override name = "ConfigError";
}

type Env = Record<string, string | undefined>;

function int(env: Env, key: keyof typeof DEFAULTS, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const raw = env[key] ?? DEFAULTS[key];
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new ConfigError(`${key} must be a whole number from ${min} to ${max}, got "${raw}"`);
  }
  return n;
}

function flag(env: Env, key: string): boolean {
  const raw = (env[key] ?? "").trim();
  if (raw === "" || raw === "0" || raw === "false") return false;
  if (raw === "1" || raw === "true") return true;
  throw new ConfigError(`${key} must be 1/true or 0/false, got "${raw}"`);
}

function url(env: Env, key: string, fallback: string | undefined): string | undefined {
  const raw = env[key] || fallback;
  if (raw === undefined) return undefined;
  if (!URL.canParse(raw) || !/^https?:$/.test(new URL(raw).protocol)) {
    throw new ConfigError(`${key} must be an http(s) URL, got "${raw}"`);
  }
  return raw.replace(/\/+$/, "");
}

function logLevel(env: Env): LogLevel {
  const raw = env.LOG_LEVEL || DEFAULTS.LOG_LEVEL;
  if (!(LOG_LEVELS as readonly string[]).includes(raw))
    throw new ConfigError(`LOG_LEVEL must be one of ${LOG_LEVELS.join(", ")}, got "${raw}"`);
  return raw as LogLevel;
}

/** WORKFLOW_BUILD: `current` (the default) or `next`. */
function workflowBuild(env: Env): WorkflowBuild {
  const raw = env.WORKFLOW_BUILD || DEFAULTS.WORKFLOW_BUILD;
  if (!(WORKFLOW_BUILDS as readonly string[]).includes(raw))
    throw new ConfigError(`WORKFLOW_BUILD must be one of ${WORKFLOW_BUILDS.join(", ")}, got "${raw}"`);
  return raw as WorkflowBuild;
}

/** API_PID / WORKER_PID: unset or empty is none (a unique one is made); else letters, digits and `._-`, as it goes into the message stream's path. */
function pid(env: Env, key: "API_PID" | "WORKER_PID"): string | undefined {
  const raw = env[key]?.trim();
  if (!raw) return undefined;
  if (!/^[A-Za-z0-9._-]{1,128}$/.test(raw))
    throw new ConfigError(`${key} must be 1 to 128 letters, digits, '.', '_' or '-', got "${raw}"`);
  return raw;
}

/** METRICS_PORT: unset or empty is no port; 0 is a port the OS picks. */
function metricsPort(env: Env): number | undefined {
  const raw = env.METRICS_PORT?.trim();
  if (!raw) return undefined;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n > 65535)
    throw new ConfigError(`METRICS_PORT must be a whole number from 0 to 65535, got "${raw}"`);
  return n;
}

/** RESONATE_PUSH_*: a host turns HTTP push on, and then a token of at least 16 characters is required. */
function pushSettings(env: Env, apiProcesses: number): PushSettings | undefined {
  const host = env.RESONATE_PUSH_HOST?.trim() || undefined;
  const token = env.RESONATE_PUSH_TOKEN || undefined;
  if (host === undefined) {
    if (token !== undefined) throw new ConfigError("RESONATE_PUSH_TOKEN is set without RESONATE_PUSH_HOST");
    return undefined;
  }
  if (!/^[A-Za-z0-9.-]+$|^\[?[0-9A-Fa-f:.]+\]?$/.test(host))
    throw new ConfigError(`RESONATE_PUSH_HOST must be a host name or an IP address, got "${host}"`);
  if (token === undefined || token.length < 16 || /\s/.test(token))
    throw new ConfigError(
      "RESONATE_PUSH_TOKEN is required with RESONATE_PUSH_HOST: at least 16 characters, no spaces (the Resonate server's --transports-http-push-auth-token)",
    );
  const port = int(env, "RESONATE_PUSH_PORT", 0, 65535);
  if (port !== 0 && apiProcesses > 1)
    throw new ConfigError(
      `RESONATE_PUSH_PORT=${port} with API_PROCESSES=${apiProcesses}: each process needs a push port of its own; leave it 0`,
    );
  return { host: host.replace(/^\[(.*)\]$/, "$1"), port, token };
}

/** OTEL_*: see `TracingSettings`. */
function tracingSettings(env: Env): TracingSettings | undefined {
  if ((env.OTEL_SDK_DISABLED ?? "").trim().toLowerCase() === "true") return undefined;
  const exporter = (env.OTEL_TRACES_EXPORTER || "otlp").trim();
  if (exporter === "none") return undefined;
  if (exporter !== "otlp")
    throw new ConfigError(`OTEL_TRACES_EXPORTER must be otlp or none, got "${exporter}"`);
  const traces = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim();
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
  const given = traces || base;
  if (!given) return undefined;
  const key = traces ? "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" : "OTEL_EXPORTER_OTLP_ENDPOINT";
  if (!URL.canParse(given) || !/^https?:$/.test(new URL(given).protocol))
    throw new ConfigError(`${key} must be an http(s) URL, got "${given}"`);
  const endpoint = traces ? given : `${given.replace(/\/+$/, "")}/v1/traces`;
  const protocolKey = env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL
    ? "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
    : "OTEL_EXPORTER_OTLP_PROTOCOL";
  const protocol = (env[protocolKey] || "http/protobuf").trim();
  if (!(OTLP_PROTOCOLS as readonly string[]).includes(protocol))
    throw new ConfigError(`${protocolKey} must be one of ${OTLP_PROTOCOLS.join(", ")}, got "${protocol}"`);
  const sampler = (env.OTEL_TRACES_SAMPLER || "parentbased_always_on").trim();
  if (!(TRACE_SAMPLERS as readonly string[]).includes(sampler))
    throw new ConfigError(
      `OTEL_TRACES_SAMPLER must be one of ${TRACE_SAMPLERS.join(", ")}, got "${sampler}"`,
    );
  const rawRatio = env.OTEL_TRACES_SAMPLER_ARG?.trim() || "1";
  const samplerRatio = Number(rawRatio);
  if (!/^(0|1|0?\.\d+|1\.0*)$/.test(rawRatio) || samplerRatio < 0 || samplerRatio > 1)
    throw new ConfigError(`OTEL_TRACES_SAMPLER_ARG must be a ratio from 0 to 1, got "${rawRatio}"`);
  const maxQueueSize = int(env, "OTEL_BSP_MAX_QUEUE_SIZE", 1, 1_000_000);
  const maxExportBatchSize = int(env, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 1, 1_000_000);
  if (maxExportBatchSize > maxQueueSize)
    throw new ConfigError(
      `OTEL_BSP_MAX_EXPORT_BATCH_SIZE (${maxExportBatchSize}) must not be above OTEL_BSP_MAX_QUEUE_SIZE (${maxQueueSize})`,
    );
  return {
    endpoint,
    protocol: protocol as OtlpProtocol,
    serviceName: env.OTEL_SERVICE_NAME?.trim() || undefined,
    sampler: sampler as TraceSampler,
    samplerRatio,
    batch: {
      scheduledDelayMs: int(env, "OTEL_BSP_SCHEDULE_DELAY", 0, 3_600_000),
      exportTimeoutMs: int(env, "OTEL_BSP_EXPORT_TIMEOUT", 1, 3_600_000),
      maxQueueSize,
      maxExportBatchSize,
    },
  };
}

/** AUTH_*: one key source at most; both of issuer and audience with it. Whether one is required is the API's to say (`requireCallerAuth`). */
function authSettings(env: Env): AuthSettings {
  const publicKeyFile = env.AUTH_PUBLIC_KEY || undefined;
  const jwksFile = env.AUTH_JWKS || undefined;
  if (publicKeyFile && jwksFile) throw new ConfigError("AUTH_PUBLIC_KEY and AUTH_JWKS: set one, not both");
  const issuer = env.AUTH_ISSUER || undefined;
  const audience = env.AUTH_AUDIENCE || undefined;
  if ((publicKeyFile || jwksFile) && (!issuer || !audience))
    throw new ConfigError("AUTH_ISSUER and AUTH_AUDIENCE are required with AUTH_PUBLIC_KEY or AUTH_JWKS");
  const operatorScope = env.AUTH_OPERATOR_SCOPE || DEFAULTS.AUTH_OPERATOR_SCOPE;
  if (!/^[\x21\x23-\x5b\x5d-\x7e]+$/.test(operatorScope))
    throw new ConfigError(
      `AUTH_OPERATOR_SCOPE must be one scope token (no spaces or quotes), got "${operatorScope}"`,
    );
  return {
    publicKeyFile: publicKeyFile && resolve(publicKeyFile),
    jwksFile: jwksFile && resolve(jwksFile),
    issuer,
    audience,
    clockSkewSeconds: int(env, "AUTH_CLOCK_SKEW_S", 0, 300),
    operatorScope,
    disabled: flag(env, "AUTH_DISABLED"),
  };
}

/** The API's rule: callers are checked, unless that is turned off in so many words. */
export function requireCallerAuth(auth: AuthSettings): void {
  if (auth.disabled && (auth.publicKeyFile || auth.jwksFile))
    throw new ConfigError("AUTH_DISABLED=1 and a key (AUTH_PUBLIC_KEY or AUTH_JWKS): set one, not both");
  if (!auth.disabled && !auth.publicKeyFile && !auth.jwksFile)
    throw new ConfigError(
      "AUTH_PUBLIC_KEY or AUTH_JWKS is required, with AUTH_ISSUER and AUTH_AUDIENCE (npm start makes a development key); AUTH_DISABLED=1 lets every caller in",
    );
}

/** Reads and checks every setting once; throws a ConfigError that names the bad key. */
export function loadConfig(env: Env = process.env): Config {
  const dataDir = resolve(env.DATA_DIR || DEFAULTS.DATA_DIR);
  const mode = env.MODE || DEFAULTS.MODE;
  if (mode !== "distributed" && mode !== "colocated") {
    throw new ConfigError(`MODE must be "distributed" or "colocated", got "${mode}"`);
  }
  const databaseUrl = env.DATABASE_URL || `sqlite://${join(dataDir, "app.db")}`;
  if (!/^(sqlite|postgres|postgresql):\/\//.test(databaseUrl)) {
    throw new ConfigError(`DATABASE_URL must start with sqlite:// or postgres://, got "${databaseUrl}"`);
  }
  const webhookSecret = env.WEBHOOK_SECRET || undefined;
  if (webhookSecret !== undefined && !/^whsec_[A-Za-z0-9+/]+={0,2}$/.test(webhookSecret)) {
    throw new ConfigError("WEBHOOK_SECRET must be a Standard Webhooks secret: whsec_ followed by base64");
  }
  const sandboxPort = int(env, "SANDBOX_PORT", 0, 65535);
  const sandbox = `http://127.0.0.1:${sandboxPort}`;
  const quoteDeadlineMs = int(env, "QUOTE_DEADLINE_MS", 1, 600_000);
  const quoteMaxWaitMs = int(env, "QUOTE_MAX_WAIT_MS", 1, 600_000);
  if (quoteMaxWaitMs < quoteDeadlineMs) {
    throw new ConfigError(
      `QUOTE_MAX_WAIT_MS (${quoteMaxWaitMs}) must not be below QUOTE_DEADLINE_MS (${quoteDeadlineMs})`,
    );
  }
  return {
    port: int(env, "PORT", 0, 65535),
    resonateUrl: url(env, "RESONATE_URL", undefined),
    resonatePort: int(env, "RESONATE_PORT", 0, 65535),
    dataDir,
    databaseUrl,
    webhookSecret,
    quoteDeadlineMs,
    quoteMaxWaitMs,
    quoteTimeoutMs: int(env, "QUOTE_TIMEOUT_MS", 1, 3_600_000),
    quoteValidityMs: int(env, "QUOTE_VALIDITY_MS", 1, 86_400_000),
    quoteMaxWaiting: int(env, "QUOTE_MAX_WAITING", 1, 1_000_000),
    jobMaxWaitMs: int(env, "JOB_MAX_WAIT_MS", 1, 3_600_000),
    jobEventsMaxMs: int(env, "JOB_EVENTS_MAX_MS", 100, 86_400_000),
    workflowTimeoutMs: int(env, "WORKFLOW_TIMEOUT_MS", 1_000, 30 * 86_400_000),
    workersPerGroup: int(env, "WORKERS_PER_GROUP", 1, 64),
    apiProcesses: int(env, "API_PROCESSES", 1, 64),
    apiPid: pid(env, "API_PID"),
    workerPid: pid(env, "WORKER_PID"),
    shutdownGraceMs: int(env, "SHUTDOWN_GRACE_MS", 0, 120_000),
    shutdownListenMs: int(env, "SHUTDOWN_LISTEN_MS", 0, 60_000),
    workflowBuild: workflowBuild(env),
    bodyLimitBytes: int(env, "BODY_LIMIT_BYTES", 1_024, 64 * 2 ** 20),
    bodyTimeoutMs: int(env, "BODY_TIMEOUT_MS", 100, 600_000),
    maxRequestsInFlight: int(env, "MAX_REQUESTS_IN_FLIGHT", 1, 1_000_000),
    colocated: mode === "colocated",
    resonateTtlMs: int(env, "RESONATE_TTL_MS", 500, 3_600_000),
    resonateToken: env.RESONATE_TOKEN || undefined,
    resonateTimeoutMs: int(env, "RESONATE_TIMEOUT", 1, 600_000),
    resonatePush: pushSettings(env, int(env, "API_PROCESSES", 1, 64)),
    paymentUrl: url(env, "PAYMENT_URL", `${sandbox}/payment`) as string,
    carrierUrl: url(env, "CARRIER_URL", `${sandbox}/carrier`) as string,
    pricingDelayMs: int(env, "PRICING_DELAY_MS", 0, 600_000),
    priceRefreshMs: int(env, "PRICE_REFRESH_MS", 100, 86_400_000),
    shipCoolingOffMs: int(env, "SHIP_COOLING_OFF_MS", 0, 30 * 86_400_000),
    benchRoutes: flag(env, "BENCH_ROUTES"),
    logLevel: logLevel(env),
    metricsPort: metricsPort(env),
    metricsHost: env.METRICS_HOST || DEFAULTS.METRICS_HOST,
    metricsToken: env.METRICS_TOKEN || undefined,
    auth: authSettings(env),
    tracing: tracingSettings(env),
  };
}

/** Where durable functions run: their own groups, or all in `self` when co-located. */
export function targetsFor(config: Pick<Config, "colocated">, self = "api"): Targets {
  if (config.colocated) return { orders: self, pricing: self, db: self, business: self };
  return { orders: "order-workers", pricing: "pricing-workers", db: "db", business: "business" };
}
