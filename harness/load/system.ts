import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ChildProcess } from "../process.ts";
import { type ResonateServer, type ServerKind, startResonateServer } from "../resonate-server.ts";
import type { Synchronous } from "../server/log.ts";
import { type ApiRuntime, spawnApi, spawnWorker } from "../service.ts";

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
export interface System {
  readonly apiUrl: string;
  readonly server: ResonateServer | undefined;
  /** The server's state folder, where this tool started the server. */
  readonly dataDir: string | undefined;
  /** The pricing workers now running (`--kill-workers` replaces them). */
  readonly pricing: ChildProcess[];
  /** Starts one more pricing worker with the same environment and adds it to `pricing`. */
  addPricingWorker(): Promise<void>;
  /** The processes whose CPU and memory the report shows. */
  watched(): { name: string; pid: number }[];
  stop(): Promise<void>;
}

/** Starts a fresh server of `server.kind`, the workers and the API; stops what it started if one fails. */
export async function startSystem(server: ServerSettings, s: SystemSettings): Promise<System> {
  const dataDir = mkdtempSync(join(tmpdir(), "load-"));
  const children: ChildProcess[] = [];
  const pricing: ChildProcess[] = [];
  let resonate: ResonateServer | undefined;
  const stop = async () => {
    await Promise.all([...children, ...pricing].map((c) => c.stop()));
    await resonate?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    // Short retry timeout: an execute written to a worker that was just killed is offered again within a second.
    resonate = await startResonateServer({
      dbPath: join(dataDir, "resonate.db"),
      retryTimeoutMs: 1_000,
      synchronous: server.synchronous,
      messagesPollIntervalMs: server.messagesPollIntervalMs,
      tickMs: server.timeoutsPollIntervalMs,
      kind: server.kind,
      bin: server.bin,
    });
    const env = {
      RESONATE_URL: resonate.url,
      DATA_DIR: dataDir,
      WEBHOOK_SECRET: `whsec_${Buffer.from("load-test-secret-0123456789abcdef").toString("base64")}`,
      QUOTE_DEADLINE_MS: String(s.deadlineMs),
      QUOTE_MAX_WAIT_MS: String(Math.max(s.deadlineMs, 10_000)),
      QUOTE_TIMEOUT_MS: String(s.quoteTimeoutMs),
      QUOTE_MAX_WAITING: String(s.maxWaiting),
      RESONATE_TTL_MS: "1000",
      BENCH_ROUTES: "1",
      MODE: s.colocated ? "colocated" : "distributed",
    };
    if (!s.colocated) {
      children.push(...(await spawnWorker({ group: "db", env })));
      pricing.push(...(await spawnWorker({ group: "pricing-workers", count: s.pricingWorkers, env })));
    }
    const api = await spawnApi({ runtime: s.apiRuntime, env });
    children.push(api);
    const started = resonate;
    return {
      apiUrl: api.url,
      server: started,
      dataDir,
      pricing,
      async addPricingWorker() {
        pricing.push(...(await spawnWorker({ group: "pricing-workers", env })));
      },
      watched: () => [
        { name: "load-generator", pid: process.pid },
        { name: "resonate-server", pid: started.process.pid },
        ...[...children, ...pricing].map((c) => ({ name: c.name, pid: c.pid })),
      ],
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** The API at `--url`: nothing to start or stop, and no process of it to watch but the load generator. */
export function runningSystem(url: string): System {
  return {
    apiUrl: url.replace(/\/+$/, ""),
    server: undefined,
    dataDir: undefined,
    pricing: [],
    addPricingWorker: async () => {},
    watched: () => [{ name: "load-generator", pid: process.pid }],
    stop: async () => {},
  };
}
