import { calibrationMs, fsyncCalibrationUs } from "./calibrate.ts";
import { drive } from "./driver.ts";
import { watch } from "./procstat.ts";
import { type Scrape, scrape } from "./prometheus.ts";
import { type PhaseResult, Recorder } from "./recorder.ts";
import { type ApiMetricsReport, apiMetricsReport, perRun, pick, ratio } from "./report.ts";
import type { LoadSystem, ServerSettings, SystemSettings } from "./system.ts";

/** Everything a measured run does: the same on every server of `--server both`. */
export interface RunSettings extends SystemSettings {
  /** Length of each measured phase (s). */
  durationS: number;
  /** Length of the warm-up phase before them (s); 0 for none. */
  warmupS: number;
  /** How many times the durable and baseline phases alternate. */
  runs: number;
  /** Share of requests that repeat one of 50 quotes. */
  repeat: number;
  /** Open loop (`rate`, req/s) or closed loop (`concurrency` clients). */
  shape: { rate?: number; concurrency?: number };
  killWorkers: boolean;
  findCapacity: boolean;
  /** `--trace-ratio`: every process exports spans to a counting OTLP sink, sampling new traces at this ratio. */
  traceRatio?: number | undefined;
}

const SKUS = Array.from({ length: 100 }, (_, i) => `sku-${i + 1}`);
const runTag = Date.now().toString(36);

/**
 * Request bodies for one server's run. Distinct requests get a quote id of
 * their own (numbered across the whole run, so no phase meets another's
 * stored quotes); repeated ones reuse one of 50 quotes.
 */
function quoteBodies(repeatShare: number): () => { sku: string; qty: number; customer_id: string } {
  let sequence = 0;
  return () => {
    const i = sequence++;
    return Math.random() < repeatShare
      ? { sku: SKUS[i % 50] as string, qty: 1 + (i % 5), customer_id: `repeat-${runTag}` }
      : { sku: SKUS[i % 100] as string, qty: 1 + (i % 97), customer_id: `c-${runTag}-${i}` };
  };
}

/** What the phases of one server's run share. */
interface Run {
  readonly system: LoadSystem;
  readonly settings: RunSettings;
  readonly body: ReturnType<typeof quoteBodies>;
  /** Quotes answered 202 and not yet seen done. */
  readonly pending: Set<string>;
}

async function phase(
  run: Run,
  name: string,
  path: string,
  opts: { rate?: number; concurrency?: number; durationS: number; kill?: boolean },
) {
  const { system } = run;
  const calibration = calibrationMs();
  // Only where the state file is known to be: on a system this tool started.
  const fsync = system.dataDir ? fsyncCalibrationUs(system.dataDir) : undefined;
  const stop = watch(system.watched());
  let killer: Promise<void> | undefined;
  let killing = Boolean(opts.kill);
  if (opts.kill) {
    killer = (async () => {
      while (killing) {
        await Bun.sleep(1_500);
        if (!killing) break;
        if (!(await system.replacePricingWorker())) break;
      }
    })();
  }
  const recorder = await drive({
    name,
    url: `${system.apiUrl}${path}`,
    headers: system.headers,
    body: run.body,
    durationS: opts.durationS,
    rate: opts.rate,
    concurrency: opts.concurrency,
    deadlineMs: run.settings.deadlineMs,
    timeoutMs: run.settings.deadlineMs + 10_000,
    onAnswer: (status, body) => {
      if (status === 202) run.pending.add((JSON.parse(body) as { quote_id: string }).quote_id);
    },
  });
  killing = false;
  await killer;
  return {
    recorder,
    result: {
      ...recorder.finish(stop()),
      calibration_ms: calibration,
      ...(fsync === undefined ? {} : { fsync_us: fsync }),
    },
  };
}

/** Polls every quote that was answered 202 until it is done; returns how many completed and how many timed out. */
async function settle202s(
  run: Run,
): Promise<{ completed: number; timed_out: number; still_pending: number }> {
  const deadline = Date.now() + 60_000;
  const outcome = { completed: 0, timed_out: 0, still_pending: 0 };
  const ids = [...run.pending];
  run.pending.clear();
  let next = 0;
  const lane = async () => {
    while (next < ids.length) {
      const id = ids[next++] as string;
      for (;;) {
        const res = await fetch(`${run.system.apiUrl}/price-quote/${encodeURIComponent(id)}`, {
          headers: run.system.headers,
        }).catch(() => undefined);
        if (res?.status === 200) {
          outcome.completed++;
          break;
        }
        if (res?.status === 504) {
          outcome.timed_out++;
          break;
        }
        if (Date.now() > deadline) {
          outcome.still_pending++;
          break;
        }
        await Bun.sleep(100);
      }
    }
  };
  await Promise.all(Array.from({ length: 16 }, lane));
  return outcome;
}

async function apiStats(
  system: LoadSystem,
): Promise<{ rss: number; heap_used: number; waiting: number } | undefined> {
  const res = await fetch(`${system.apiUrl}/bench/stats`, { headers: system.headers }).catch(() => undefined);
  return res?.ok ? ((await res.json()) as { rss: number; heap_used: number; waiting: number }) : undefined;
}

/** The API's `/metrics`, or undefined where it does not answer (an API at `--url` may keep them closed). */
const apiMetrics = (system: LoadSystem): Promise<Scrape | undefined> =>
  scrape(`${system.apiUrl}/metrics`).catch(() => undefined);

/**
 * Throws unless the API takes the run's token: asks for a quote no one
 * made (`GET /price-quote/:quote_id`, checked like the quote route, and
 * changing nothing), which answers 404 to a caller it lets in and 401 or
 * 403 to one it does not.
 */
async function checkAccess(system: LoadSystem): Promise<void> {
  const res = await fetch(`${system.apiUrl}/price-quote/load-access-check`, { headers: system.headers });
  if (res.status !== 401 && res.status !== 403) return;
  const body = (await res.text()).slice(0, 300);
  const given = system.headers.authorization
    ? "refused the run's token"
    : "wants a bearer token and none was given (set API_TOKEN)";
  throw new Error(
    `the API at ${system.apiUrl} ${given}: GET /price-quote/:quote_id answered ${res.status} ${body}`,
  );
}

/** One server's measured run: its phases (named through `label`), its part of the report, and failed checks. */
export interface ServerRun {
  phases: PhaseResult[];
  durable: PhaseResult;
  report: Record<string, unknown>;
  /** What the API's own metrics counted over the run; undefined when they could not be read. */
  apiMetrics: ApiMetricsReport | undefined;
  failures: string[];
}

/**
 * Warms up, then drives the durable and baseline phases (and the capacity
 * ramp) on `system`, settles the quotes answered 202 and checks the run.
 */
export async function measure(
  system: LoadSystem,
  s: RunSettings,
  server: ServerSettings | undefined,
  label: (phase: string) => string,
): Promise<ServerRun> {
  const run: Run = { system, settings: s, body: quoteBodies(s.repeat), pending: new Set() };
  const { apiUrl } = system;
  await checkAccess(system);
  const metricsBefore = await apiMetrics(system);
  // Warm up both routes (JIT, connections, the price list's first reads).
  const untimed = {
    body: run.body,
    headers: system.headers,
    rate: 100,
    deadlineMs: s.deadlineMs,
    timeoutMs: 10_000,
  };
  await drive({ ...untimed, name: "warmup", url: `${apiUrl}/price-quote`, durationS: 2 });
  const baselineAvailable =
    (
      await fetch(`${apiUrl}/bench/price-quote`, {
        method: "POST",
        headers: { "content-type": "application/json", ...system.headers },
        body: JSON.stringify(run.body()),
      }).catch(() => undefined)
    )?.status === 200;
  await drive({ ...untimed, name: "warmup", url: `${apiUrl}/bench/price-quote`, durationS: 1 });
  await settle202s(run);
  const memBefore = await apiStats(system);

  const phases: PhaseResult[] = [];
  let shape: { rate?: number; concurrency?: number } = s.shape;
  // Every process compiles its hot code in the first seconds at full load;
  // a service is measured after that, and the warm-up is shown on its own.
  let warmup: PhaseResult | undefined;
  if (s.warmupS > 0) {
    warmup = (await phase(run, label("warmup"), "/price-quote", { ...shape, durationS: s.warmupS })).result;
    phases.push(warmup);
    await settle202s(run);
    if (baselineAvailable)
      await phase(run, label("warmup-baseline"), "/bench/price-quote", {
        ...shape,
        durationS: Math.max(1, s.warmupS / 5),
      });
  }

  let capacity: { rate: number; throughput: number; p99_ms: number } | undefined;
  if (s.findCapacity) {
    // Ramp until the durable route stops answering everything with 200 within the deadline.
    for (const rate of [100, 200, 400, 600, 800, 1000, 1200, 1500, 1800, 2200, 2600, 3000, 3500, 4000]) {
      const { result: p } = await phase(run, label(`durable@${rate}`), "/price-quote", {
        rate,
        durationS: 5,
      });
      await settle202s(run);
      const ok = (p.status["200"] ?? 0) / Math.max(1, p.requests);
      console.log(
        `  ${label(String(rate))} req/s offered: ${p.throughput} req/s, p99 ${p.p99_ms} ms, ${Math.round(ok * 1000) / 10}% 200`,
      );
      if (ok < 0.99 || p.p99_ms > s.deadlineMs || p.throughput < rate * 0.95) break;
      capacity = { rate, throughput: p.throughput, p99_ms: p.p99_ms };
    }
    if (!capacity) throw new Error(`${label("durable")}: the route did not hold even 100 req/s`);
    console.log(
      `load: ${label("capacity")} ≈ ${capacity.throughput} req/s (p99 ${capacity.p99_ms} ms); now twice that`,
    );
    shape = { rate: capacity.rate * 2 };
  }

  // With --runs, the phases alternate so that a slow spell of the machine hits both routes alike.
  const durableRuns: Awaited<ReturnType<typeof phase>>[] = [];
  const baselineRuns: Awaited<ReturnType<typeof phase>>[] = [];
  const after202 = { completed: 0, timed_out: 0, still_pending: 0 };
  for (let i = 1; i <= s.runs; i++) {
    const suffix = s.runs > 1 ? `#${i}` : "";
    const d = await phase(run, label(`durable${suffix}`), "/price-quote", {
      ...shape,
      durationS: s.durationS,
      kill: s.killWorkers,
    });
    durableRuns.push(d);
    phases.push(d.result);
    const settled = await settle202s(run);
    after202.completed += settled.completed;
    after202.timed_out += settled.timed_out;
    after202.still_pending += settled.still_pending;
    if (baselineAvailable) {
      const b = await phase(run, label(`baseline${suffix}`), "/bench/price-quote", {
        ...shape,
        durationS: s.durationS,
      });
      baselineRuns.push(b);
      phases.push(b.result);
    }
  }
  const pooledOrOnly = (name: string, results: typeof durableRuns) =>
    s.runs > 1 ? Recorder.pooled(label(name), results) : results[0]?.result;
  const durable = pooledOrOnly("durable", durableRuns) as PhaseResult;
  const baseline = pooledOrOnly("baseline", baselineRuns);
  if (s.runs > 1) {
    phases.push(durable);
    if (baseline) phases.push(baseline);
  }
  await Bun.sleep(1_000);
  const memAfter = await apiStats(system);
  const metricsAfter = metricsBefore && (await apiMetrics(system));
  const seen = metricsBefore && metricsAfter ? apiMetricsReport(metricsBefore, metricsAfter) : undefined;

  const failures: string[] = [];
  const bad = Object.entries(durable.status).filter(([st]) => !["200", "202", "503", "504"].includes(st));
  if (durable.deadline_violations > 0 && !s.killWorkers)
    failures.push(`${durable.deadline_violations} answers later than the deadline + 50 ms`);
  if (bad.length > 0) failures.push(`unexpected answers: ${JSON.stringify(Object.fromEntries(bad))}`);
  if (after202.still_pending > 0)
    failures.push(`${after202.still_pending} quotes answered 202 never completed`);
  const heapGrowth = memBefore && memAfter ? memAfter.heap_used - memBefore.heap_used : undefined;
  if (
    heapGrowth !== undefined &&
    memBefore &&
    heapGrowth > Math.max(16 * 1048576, memBefore.heap_used * 0.25)
  ) {
    failures.push(`API heap grew by ${Math.round(heapGrowth / 1048576)} MiB and did not come back`);
  }
  if (memAfter && memAfter.waiting !== 0)
    failures.push(`${memAfter.waiting} quote requests still waiting after the load`);

  const report = {
    synchronous: server?.synchronous ?? null,
    warmup: warmup ? pick(warmup) : null,
    capacity,
    durable: pick(durable),
    baseline: baseline ? pick(baseline) : null,
    ratio_p50: baseline ? ratio(durable.p50_ms, baseline.p50_ms) : null,
    ratio_p99: baseline ? ratio(durable.p99_ms, baseline.p99_ms) : null,
    runs: s.runs > 1 ? perRun(durableRuns, baselineRuns) : undefined,
    deadline_violations: durable.deadline_violations,
    quotes_202: after202,
    api_heap_mib:
      memBefore && memAfter
        ? {
            before: +(memBefore.heap_used / 1048576).toFixed(1),
            after: +(memAfter.heap_used / 1048576).toFixed(1),
          }
        : null,
    api_metrics: seen ?? null,
    checks: failures.length === 0 ? "passed" : failures,
  };
  return { phases, durable, report, apiMetrics: seen, failures };
}
