import type { ChildProcess } from "../process.ts";
import type { ResonateServer, ServerKind } from "../resonate-server.ts";
import type { Synchronous } from "../server/log.ts";
import type { ApiRuntime, WorkerSlot } from "../service.ts";
import { startSystem } from "../system.ts";

/** How the load tool starts one server. */
export interface ServerSettings {
  kind: ServerKind;
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
  pricingWorkers: number;
}

/** One run's processes: a server, workers and an API this tool started, or the API at `--url`. */
export interface LoadSystem {
  readonly apiUrl: string;
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
    },
    // Quotes call no third party.
    sandbox: false,
    apiRuntime: s.apiRuntime,
    env: {
      QUOTE_DEADLINE_MS: String(s.deadlineMs),
      QUOTE_MAX_WAIT_MS: String(Math.max(s.deadlineMs, 10_000)),
      QUOTE_TIMEOUT_MS: String(s.quoteTimeoutMs),
      QUOTE_MAX_WAITING: String(s.maxWaiting),
      RESONATE_TTL_MS: "1000",
      BENCH_ROUTES: "1",
    },
  });
  const started = system.server;
  if (!started) {
    await system.stop();
    throw new Error("startLoadSystem: the system started no server");
  }
  const pricingSlots = system.workers.slots.filter((slot) => slot.group === "pricing-workers");
  /** Pricing slots, the one whose process has run longest first. */
  const replaceOrder: WorkerSlot[] = [...pricingSlots];
  return {
    apiUrl: system.apiUrl,
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
        named(system.api),
        ...pricingSlots.flatMap((slot) => (slot.current ? [named(slot.current)] : [])),
      ];
    },
    stop: () => system.stop(),
  };
}

/** The API at `--url`: nothing to start or stop, and no process of it to watch but the load generator. */
export function runningSystem(url: string): LoadSystem {
  return {
    apiUrl: url.replace(/\/+$/, ""),
    server: undefined,
    dataDir: undefined,
    replacePricingWorker: async () => false,
    watched: () => [{ name: "load-generator", pid: process.pid }],
    stop: async () => {},
  };
}
