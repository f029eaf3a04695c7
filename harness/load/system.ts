import { API_AUTH_DEFAULTS } from "../api-auth.ts";
import type { ChildProcess } from "../process.ts";
import type { Synchronous } from "../resonate-server/log.ts";
import type { ApiRuntime, WorkerSlot } from "../service.ts";
import type { ResonateServer, ServerKind, Storage } from "../start-server.ts";
import { startSystem } from "../system.ts";

/** How the load tool starts one server. */
export interface ServerSettings {
  kind: ServerKind;
  /** How the reports name it: `harness`, `real`, or `real-postgres`, with `-push` when results are pushed. */
  name: string;
  /** Results reach the API by HTTP push (`startSystem`'s `push`), not over its message stream. */
  push: boolean;
  /** The real server's store; `sqlite` for ours. */
  storage: Storage;
  /** The real binary; undefined for ours. */
  bin: string | undefined;
  /** Our server's `--synchronous`; undefined for the real one. */
  synchronous: Synchronous | undefined;
  /** `--messages-poll-interval` (ms). */
  messagesPollIntervalMs: number;
  /** `--timeouts-poll-interval` (ms). */
  timeoutsPollIntervalMs: number;
}

/** What the API and the workers of a load run are told. */
export interface SystemSettings {
  deadlineMs: number;
  quoteTimeoutMs: number;
  maxWaiting: number;
  /** The API computes the quotes itself, and no worker is started. */
  colocated: boolean;
  /** The runtime the API runs on (the workers and our server run on Bun either way). */
  apiRuntime: ApiRuntime;
  /** API processes on the one port. */
  apiProcesses: number;
  pricingWorkers: number;
  /** Every process exports its spans to `endpoint`, sampling new traces at `ratio` (`--trace-ratio`); none when undefined. */
  tracing?: { endpoint: string; ratio: number } | undefined;
}

/** Who the load tool is to an API it starts: an operator (`sub` load), as the harness tools are wherever no user is named. */
export const LOAD_CALLER = { sub: "load", scope: API_AUTH_DEFAULTS.operatorScope } as const;

/** One run's processes: a server, workers and an API this tool started, or the API at `--url`. */
export interface LoadSystem {
  readonly apiUrl: string;
  /**
   * The headers every request to the API's checked routes carries: one
   * `Authorization: Bearer` for the whole run, signed before it starts so
   * that no phase measures the signing, and the same on the durable and the
   * baseline route. Empty for an API at `--url` given no token.
   */
  readonly headers: Readonly<Record<string, string>>;
  readonly server: ResonateServer | undefined;
  /** The server's state folder, where this tool started the server. */
  readonly dataDir: string | undefined;
  /**
   * SIGKILLs the pricing worker that has run longest and starts its
   * replacement; resolves once that one is ready, with false when there is
   * no pricing worker.
   */
  replacePricingWorker(): Promise<boolean>;
  /** The processes whose CPU and memory the report shows. */
  watched(): { name: string; pid: number }[];
  stop(): Promise<void>;
}

/** The `Authorization` header of `token`; none without one. */
const bearer = (token: string | undefined): Record<string, string> =>
  token ? { authorization: `Bearer ${token}` } : {};

const named = (c: ChildProcess) => ({ name: c.name, pid: c.pid });

/** Starts a fresh server of `server.kind`, the workers and the API (`startSystem`); stops what it started if one fails. */
export async function startLoadSystem(server: ServerSettings, s: SystemSettings): Promise<LoadSystem> {
  const system = await startSystem({
    mode: s.colocated ? "colocated" : "distributed",
    workers: { db: 1, "pricing-workers": s.pricingWorkers },
    // Short retry timeout: an execute written to a worker that was just killed is offered again within a second.
    server: {
      retryTimeoutMs: 1_000,
      synchronous: server.synchronous,
      messagesPollIntervalMs: server.messagesPollIntervalMs,
      tickMs: server.timeoutsPollIntervalMs,
      kind: server.kind,
      bin: server.bin,
      storage: server.storage,
    },
    push: server.push,
    // Quotes call no third party.
    sandbox: false,
    apiRuntime: s.apiRuntime,
    apiProcesses: s.apiProcesses,
    env: {
      QUOTE_DEADLINE_MS: String(s.deadlineMs),
      QUOTE_MAX_WAIT_MS: String(Math.max(s.deadlineMs, 10_000)),
      QUOTE_TIMEOUT_MS: String(s.quoteTimeoutMs),
      QUOTE_MAX_WAITING: String(s.maxWaiting),
      RESONATE_TTL_MS: "1000",
      BENCH_ROUTES: "1",
      ...(s.tracing
        ? {
            OTEL_EXPORTER_OTLP_ENDPOINT: s.tracing.endpoint,
            OTEL_TRACES_SAMPLER: "parentbased_traceidratio",
            OTEL_TRACES_SAMPLER_ARG: String(s.tracing.ratio),
          }
        : {}),
    },
  });
  const started = system.server;
  if (!started) {
    await system.stop();
    throw new Error("startLoadSystem: the system started no server");
  }
  let token: string | undefined;
  try {
    token = await system.apiAuth?.token(LOAD_CALLER.sub, { scope: LOAD_CALLER.scope });
  } catch (error) {
    await system.stop();
    throw error;
  }
  const pricingSlots = system.workers.slots.filter((slot) => slot.group === "pricing-workers");
  /** Pricing slots, the one whose process has run longest first. */
  const replaceOrder: WorkerSlot[] = [...pricingSlots];
  return {
    apiUrl: system.apiUrl,
    headers: bearer(token),
    server: started,
    dataDir: system.dataDir,
    async replacePricingWorker() {
      const slot = replaceOrder.shift();
      if (!slot) return false;
      await system.workers.replace(slot);
      replaceOrder.push(slot);
      return true;
    },
    watched: () => {
      const live = system.workers.live();
      return [
        { name: "load-generator", pid: process.pid },
        { name: "resonate-server", pid: started.process.pid },
        ...live.filter((c) => !pricingSlots.some((slot) => slot.current === c)).map(named),
        ...system.apis.map(named),
        ...pricingSlots.flatMap((slot) => (slot.current ? [named(slot.current)] : [])),
      ];
    },
    stop: () => system.stop(),
  };
}

/**
 * The API at `--url`: nothing to start or stop, and no process of it to
 * watch but the load generator. `token` (API_TOKEN) goes as the bearer
 * token of every request; without one, requests carry none (an API that
 * checks its callers refuses them, which the run's first request finds).
 */
export function runningSystem(url: string, token: string | undefined): LoadSystem {
  return {
    apiUrl: url.replace(/\/+$/, ""),
    headers: bearer(token),
    server: undefined,
    dataDir: undefined,
    replacePricingWorker: async () => false,
    watched: () => [{ name: "load-generator", pid: process.pid }],
    stop: async () => {},
  };
}
