import { join, resolve } from "node:path";
import type { Static } from "@sinclair/typebox";
import { ConfigError, type Env, parseEnv } from "./env-schema.ts";
import { type OtlpProtocol, ROLES, type TraceSampler } from "./settings.ts";

export { ConfigError } from "./env-schema.ts";
export type { LogLevel, OtlpProtocol, TraceSampler, WorkflowBuild } from "./settings.ts";
export { LOG_LEVELS, OTLP_PROTOCOLS, TRACE_SAMPLERS, WORKFLOW_BUILDS } from "./settings.ts";

/** Worker groups and the durable functions each one registers. */
export const GROUPS = ["order-workers", "pricing-workers", "db", "business"] as const;
export type Group = (typeof GROUPS)[number];

/** Where each kind of durable function runs: a group name (`poll://any@<group>`). */
export type Targets = Record<"orders" | "pricing" | "db" | "business", string>;

/**
 * What a worker reads (`loadWorkerConfig`), from `ROLES.worker`: the
 * variables' meanings, defaults and ranges are in core/settings.ts.
 */
export type WorkerConfig = ReturnType<typeof workerConfig>;
/** What the API reads (`loadConfig`): a worker's settings too, as it may run every durable function itself. */
export type Config = ReturnType<typeof apiConfig>;
/** What `npm start` reads (`loadLauncherConfig`): every process's settings, checked before anything starts. */
export type LauncherConfig = ReturnType<typeof launcherConfig>;

/**
 * Where and how spans go, from the standard variables: on when
 * `OTEL_EXPORTER_OTLP_ENDPOINT` (or `…_TRACES_ENDPOINT`) is set and
 * `OTEL_SDK_DISABLED` is not `true`. The exporter reads its own headers and
 * timeout variables.
 */
export interface TracingSettings {
  /** `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as given, else `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`. */
  endpoint: string;
  protocol: OtlpProtocol;
  /** Unset: each process names itself (`api`, its worker group). */
  serviceName: string | undefined;
  sampler: TraceSampler;
  samplerRatio: number;
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

/** Where the API's callers' token keys come from and what their tokens must say (`AUTH_*`). */
export interface AuthSettings {
  /** A PEM file with the public key (SPKI) tokens are signed with; or `jwksFile`. */
  publicKeyFile: string | undefined;
  /** A JWKS file (`{"keys": [...]}`) of the public keys tokens are signed with; or `publicKeyFile`. */
  jwksFile: string | undefined;
  issuer: string | undefined;
  audience: string | undefined;
  clockSkewSeconds: number;
  operatorScope: string;
  disabled: boolean;
}

type Settings<Role extends keyof typeof ROLES> = Static<(typeof ROLES)[Role]>;

/** OTEL_*: see `TracingSettings`. */
function tracingSettings(s: Settings<"worker">): TracingSettings | undefined {
  if (s.OTEL_SDK_DISABLED || s.OTEL_TRACES_EXPORTER === "none") return undefined;
  const traces = s.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  const base = s.OTEL_EXPORTER_OTLP_ENDPOINT;
  const endpoint = traces ?? (base && `${base}/v1/traces`);
  if (!endpoint) return undefined;
  if (s.OTEL_BSP_MAX_EXPORT_BATCH_SIZE > s.OTEL_BSP_MAX_QUEUE_SIZE)
    throw new ConfigError(
      `OTEL_BSP_MAX_EXPORT_BATCH_SIZE (${s.OTEL_BSP_MAX_EXPORT_BATCH_SIZE}) must not be above OTEL_BSP_MAX_QUEUE_SIZE (${s.OTEL_BSP_MAX_QUEUE_SIZE})`,
    );
  return {
    endpoint,
    protocol: s.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? s.OTEL_EXPORTER_OTLP_PROTOCOL,
    serviceName: s.OTEL_SERVICE_NAME,
    sampler: s.OTEL_TRACES_SAMPLER,
    samplerRatio: s.OTEL_TRACES_SAMPLER_ARG,
    batch: {
      scheduledDelayMs: s.OTEL_BSP_SCHEDULE_DELAY,
      exportTimeoutMs: s.OTEL_BSP_EXPORT_TIMEOUT,
      maxQueueSize: s.OTEL_BSP_MAX_QUEUE_SIZE,
      maxExportBatchSize: s.OTEL_BSP_MAX_EXPORT_BATCH_SIZE,
    },
  };
}

/** RESONATE_PUSH_*: a host turns HTTP push on, and then its token is required. */
function pushSettings(s: Settings<"api">): PushSettings | undefined {
  const host = s.RESONATE_PUSH_HOST;
  const token = s.RESONATE_PUSH_TOKEN;
  if (host === undefined) {
    if (token !== undefined) throw new ConfigError("RESONATE_PUSH_TOKEN is set without RESONATE_PUSH_HOST");
    return undefined;
  }
  if (token === undefined)
    throw new ConfigError(
      "RESONATE_PUSH_TOKEN is required with RESONATE_PUSH_HOST: at least 16 characters, no spaces (the Resonate server's --transports-http-push-auth-token)",
    );
  return { host: host.replace(/^\[(.*)\]$/, "$1"), port: s.RESONATE_PUSH_PORT, token };
}

/** AUTH_*: one key source at most; both of issuer and audience with it. Whether one is required is the API's to say (`requireCallerAuth`). */
function authSettings(s: Settings<"api">): AuthSettings {
  const publicKeyFile = s.AUTH_PUBLIC_KEY;
  const jwksFile = s.AUTH_JWKS;
  if (publicKeyFile && jwksFile) throw new ConfigError("AUTH_PUBLIC_KEY and AUTH_JWKS: set one, not both");
  if ((publicKeyFile || jwksFile) && (!s.AUTH_ISSUER || !s.AUTH_AUDIENCE))
    throw new ConfigError("AUTH_ISSUER and AUTH_AUDIENCE are required with AUTH_PUBLIC_KEY or AUTH_JWKS");
  return {
    publicKeyFile: publicKeyFile && resolve(publicKeyFile),
    jwksFile: jwksFile && resolve(jwksFile),
    issuer: s.AUTH_ISSUER,
    audience: s.AUTH_AUDIENCE,
    clockSkewSeconds: s.AUTH_CLOCK_SKEW_S,
    operatorScope: s.AUTH_OPERATOR_SCOPE,
    disabled: s.AUTH_DISABLED,
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

function workerConfig(s: Settings<"worker">) {
  const dataDir = resolve(s.DATA_DIR);
  const sandbox = `http://127.0.0.1:${s.SANDBOX_PORT}`;
  return {
    resonateUrl: s.RESONATE_URL,
    resonateToken: s.RESONATE_TOKEN,
    resonateTimeoutMs: s.RESONATE_TIMEOUT,
    resonateTtlMs: s.RESONATE_TTL_MS,
    dataDir,
    workflowBuild: s.WORKFLOW_BUILD,
    shutdownGraceMs: s.SHUTDOWN_GRACE_MS,
    logLevel: s.LOG_LEVEL,
    metricsPort: s.METRICS_PORT,
    metricsHost: s.METRICS_HOST,
    metricsToken: s.METRICS_TOKEN,
    tracing: tracingSettings(s),
    exitWithParent: s.EXIT_WITH_PARENT,
    workerPid: s.WORKER_PID,
    databaseUrl: s.DATABASE_URL ?? `sqlite://${join(dataDir, "app.db")}`,
    paymentUrl: s.PAYMENT_URL ?? `${sandbox}/payment`,
    carrierUrl: s.CARRIER_URL ?? `${sandbox}/carrier`,
    priceRefreshMs: s.PRICE_REFRESH_MS,
    shipCoolingOffMs: s.SHIP_COOLING_OFF_MS,
    pricingDelayMs: s.PRICING_DELAY_MS,
  };
}

function apiConfig(s: Settings<"api">) {
  if (s.QUOTE_MAX_WAIT_MS < s.QUOTE_DEADLINE_MS) {
    throw new ConfigError(
      `QUOTE_MAX_WAIT_MS (${s.QUOTE_MAX_WAIT_MS}) must not be below QUOTE_DEADLINE_MS (${s.QUOTE_DEADLINE_MS})`,
    );
  }
  return {
    ...workerConfig(s),
    port: s.PORT,
    host: s.HOST,
    colocated: s.MODE === "colocated",
    apiPid: s.API_PID,
    webhookSecret: s.WEBHOOK_SECRET,
    quoteDeadlineMs: s.QUOTE_DEADLINE_MS,
    quoteMaxWaitMs: s.QUOTE_MAX_WAIT_MS,
    quoteTimeoutMs: s.QUOTE_TIMEOUT_MS,
    quoteValidityMs: s.QUOTE_VALIDITY_MS,
    quoteMaxWaiting: s.QUOTE_MAX_WAITING,
    jobMaxWaitMs: s.JOB_MAX_WAIT_MS,
    jobEventsMaxMs: s.JOB_EVENTS_MAX_MS,
    workflowTimeoutMs: s.WORKFLOW_TIMEOUT_MS,
    shutdownListenMs: s.SHUTDOWN_LISTEN_MS,
    bodyLimitBytes: s.BODY_LIMIT_BYTES,
    bodyTimeoutMs: s.BODY_TIMEOUT_MS,
    maxRequestsInFlight: s.MAX_REQUESTS_IN_FLIGHT,
    benchRoutes: s.BENCH_ROUTES,
    resonatePush: pushSettings(s),
    auth: authSettings(s),
  };
}

function launcherConfig(s: Settings<"launcher">) {
  const api = apiConfig(s);
  if (api.resonatePush && api.resonatePush.port !== 0 && s.API_PROCESSES > 1)
    throw new ConfigError(
      `RESONATE_PUSH_PORT=${api.resonatePush.port} with API_PROCESSES=${s.API_PROCESSES}: each process needs a push port of its own; leave it 0`,
    );
  return {
    ...api,
    resonatePort: s.RESONATE_PORT,
    resonateBin: s.RESONATE_BIN,
    storage: s.RESONATE_STORAGE,
    postgresUrl: s.RESONATE_POSTGRES_URL,
    resonateAuth: s.RESONATE_AUTH,
    push: s.RESONATE_PUSH,
    apiRuntime: s.API_RUNTIME,
    workersPerGroup: s.WORKERS_PER_GROUP,
    apiProcesses: s.API_PROCESSES,
    sandboxPort: s.SANDBOX_PORT,
    /** PAYMENT_URL and CARRIER_URL as given: `npm start`'s sandbox serves whichever is not. */
    givenPaymentUrl: s.PAYMENT_URL,
    givenCarrierUrl: s.CARRIER_URL,
  };
}

/** A worker's settings, read and checked once; throws a ConfigError that names the bad variable. */
export function loadWorkerConfig(env: Env = process.env): WorkerConfig {
  return workerConfig(parseEnv(ROLES.worker, env));
}

/** The API's settings, read and checked once; throws a ConfigError that names the bad variable. */
export function loadConfig(env: Env = process.env): Config {
  return apiConfig(parseEnv(ROLES.api, env));
}

/** Every setting, as `npm start` checks them before it starts anything. */
export function loadLauncherConfig(env: Env = process.env): LauncherConfig {
  return launcherConfig(parseEnv(ROLES.launcher, env));
}

/** Where durable functions run: their own groups, or all in `self` when co-located. */
export function targetsFor(config: Pick<Config, "colocated">, self = "api"): Targets {
  if (config.colocated) return { orders: self, pricing: self, db: self, business: self };
  return { orders: "order-workers", pricing: "pricing-workers", db: "db", business: "business" };
}
