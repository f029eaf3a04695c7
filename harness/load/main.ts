/**
 * Load test of the synchronous quote route (POST /price-quote) against a
 * baseline that computes the same quote in-process with no durability.
 *
 *   npm run load -- --duration 10 --rate 800 [--json load.json] [--html load.html]
 *   npm run load -- --find-capacity          ramp the rate, then check 2× capacity
 *   npm run load -- --concurrency 32         closed loop instead of a fixed rate
 *   npm run load -- --url http://host:3000   an API that is already running (BENCH_ROUTES=1 for the baseline)
 *   npm run load -- --kill-workers           kill and restart pricing workers during the durable phase
 *   npm run load -- --colocated              the API runs the quote itself (MODE=colocated): no RPC hop
 *   npm run load -- --runs 3                 alternate the durable and baseline phases three times
 *   npm run load -- --synchronous full       the server syncs every commit before answering (default: normal)
 *   npm run load -- --warmup 0               measure from a cold start (default: warm up as long as a phase)
 *
 * Checked by the tool itself (exit 1 when one fails): every answer within
 * the deadline + 50 ms; no 500 and no failed connection; every 202'd quote
 * completes; the API's heap returns to its starting size after the load.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { ChildProcess } from "../process.ts";
import { type ResonateServer, startResonateServer } from "../resonate-server.ts";
import { DEFAULT_SYNCHRONOUS, SYNCHRONOUS_MODES, type Synchronous } from "../server/log.ts";
import { spawnApi, spawnWorker } from "../service.ts";
import { calibrationMs, fsyncCalibrationUs } from "./calibrate.ts";
import { drive } from "./driver.ts";
import { renderHtml } from "./html.ts";
import { watch } from "./procstat.ts";
import { median, type PhaseResult, Recorder } from "./recorder.ts";

const { values } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    duration: { type: "string", default: "10" },
    runs: { type: "string", default: "1" },
    warmup: { type: "string" },
    rate: { type: "string" },
    concurrency: { type: "string" },
    "deadline-ms": { type: "string", default: "1000" },
    repeat: { type: "string", default: "0" },
    "pricing-workers": { type: "string", default: "1" },
    "find-capacity": { type: "boolean", default: false },
    "kill-workers": { type: "boolean", default: false },
    colocated: { type: "boolean", default: false },
    synchronous: { type: "string" },
    "quote-timeout-ms": { type: "string", default: "5000" },
    "max-waiting": { type: "string", default: "200" },
    url: { type: "string" },
    json: { type: "string" },
    html: { type: "string" },
  },
});

function num(name: keyof typeof values, min = 0): number {
  const n = Number(values[name]);
  if (!Number.isFinite(n) || n < min) {
    console.error(`load: --${name} must be a number ≥ ${min}, got "${values[name]}"`);
    process.exit(2);
  }
  return n;
}
const deadlineMs = num("deadline-ms", 1);
const durationS = num("duration", 1);
const repeat = num("repeat");
const runs = num("runs", 1);
const warmupS = values.warmup === undefined ? durationS : num("warmup");
if (!Number.isInteger(runs)) {
  console.error(`load: --runs must be a whole number ≥ 1, got "${values.runs}"`);
  process.exit(2);
}
if (values.colocated && (values["kill-workers"] || values.url)) {
  console.error(
    "load: --colocated starts its own API with no workers; it goes with neither --kill-workers nor --url",
  );
  process.exit(2);
}
const synchronous = values.synchronous ?? (values.url ? undefined : DEFAULT_SYNCHRONOUS);
if (synchronous !== undefined && !SYNCHRONOUS_MODES.includes(synchronous as Synchronous)) {
  console.error(`load: --synchronous must be one of ${SYNCHRONOUS_MODES.join(", ")}, got "${synchronous}"`);
  process.exit(2);
}
if (values.synchronous && values.url) {
  console.error("load: --synchronous sets the server this tool starts; it does not go with --url");
  process.exit(2);
}
if (repeat > 1) {
  console.error("load: --repeat is the share of requests that repeat a recent quote, 0 to 1");
  process.exit(2);
}

// ---------------------------------------------------------------- the system
const children: ChildProcess[] = [];
let server: ResonateServer | undefined;
let dataDir: string | undefined;
let apiUrl = values.url?.replace(/\/+$/, "");
const pricing: ChildProcess[] = [];
const pricingEnv: Record<string, string> = {};

async function startSystem(): Promise<void> {
  dataDir = mkdtempSync(join(tmpdir(), "load-"));
  // Short retry timeout: an execute written to a worker that was just killed is offered again within a second.
  server = await startResonateServer({
    dbPath: join(dataDir, "resonate.db"),
    retryTimeoutMs: 1_000,
    synchronous: synchronous as Synchronous,
  });
  const env = {
    RESONATE_URL: server.url,
    DATA_DIR: dataDir,
    WEBHOOK_SECRET: `whsec_${Buffer.from("load-test-secret-0123456789abcdef").toString("base64")}`,
    QUOTE_DEADLINE_MS: String(deadlineMs),
    QUOTE_MAX_WAIT_MS: String(Math.max(deadlineMs, 10_000)),
    QUOTE_TIMEOUT_MS: String(num("quote-timeout-ms", 1)),
    QUOTE_MAX_WAITING: String(num("max-waiting", 1)),
    RESONATE_TTL_MS: "1000",
    BENCH_ROUTES: "1",
    MODE: values.colocated ? "colocated" : "distributed",
  };
  Object.assign(pricingEnv, env);
  if (!values.colocated) {
    children.push(...(await spawnWorker({ group: "db", env })));
    pricing.push(...(await spawnWorker({ group: "pricing-workers", count: num("pricing-workers", 1), env })));
  }
  const api = await spawnApi({ env });
  children.push(api);
  apiUrl = api.url;
}

async function stopSystem(): Promise<void> {
  await Promise.all([...children, ...pricing].map((c) => c.stop()));
  await server?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
}

const watched = () => [
  { name: "load-generator", pid: process.pid },
  ...(server ? [{ name: "resonate-server", pid: server.process.pid }] : []),
  ...children.map((c) => ({ name: c.name, pid: c.pid })),
  ...pricing.map((c) => ({ name: c.name, pid: c.pid })),
];

// ---------------------------------------------------------------- requests
const SKUS = Array.from({ length: 100 }, (_, i) => `sku-${i + 1}`);
const runTag = Date.now().toString(36);
/**
 * Distinct requests get a quote id of their own (numbered across the whole
 * run, so no phase meets another's stored quotes); repeated ones reuse one
 * of 50 quotes.
 */
let sequence = 0;
const quoteBody = () => {
  const i = sequence++;
  return Math.random() < repeat
    ? { sku: SKUS[i % 50] as string, qty: 1 + (i % 5), customer_id: `repeat-${runTag}` }
    : { sku: SKUS[i % 100] as string, qty: 1 + (i % 97), customer_id: `c-${runTag}-${i}` };
};

const pendingQuotes = new Set<string>();

async function phase(
  name: string,
  path: string,
  opts: { rate?: number; concurrency?: number; durationS: number; kill?: boolean },
) {
  const calibration = calibrationMs();
  // Only where the state file is known to be: on a system this tool started.
  const fsync = dataDir ? fsyncCalibrationUs(dataDir) : undefined;
  const stop = watch(watched());
  let killer: Promise<void> | undefined;
  let killing = Boolean(opts.kill);
  if (opts.kill) {
    killer = (async () => {
      while (killing) {
        await Bun.sleep(1_500);
        if (!killing) break;
        const victim = pricing.shift();
        if (!victim) break;
        victim.kill("SIGKILL");
        await victim.exited;
        const [fresh] = (await spawnWorker({ group: "pricing-workers", env: pricingEnv })) as [ChildProcess];
        pricing.push(fresh);
      }
    })();
  }
  const recorder = await drive({
    name,
    url: `${apiUrl}${path}`,
    body: quoteBody,
    durationS: opts.durationS,
    rate: opts.rate,
    concurrency: opts.concurrency,
    deadlineMs,
    timeoutMs: deadlineMs + 10_000,
    onAnswer: (status, body) => {
      if (status === 202) pendingQuotes.add((JSON.parse(body) as { quote_id: string }).quote_id);
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
async function settle202s(): Promise<{ completed: number; timed_out: number; still_pending: number }> {
  const deadline = Date.now() + 60_000;
  const outcome = { completed: 0, timed_out: 0, still_pending: 0 };
  const ids = [...pendingQuotes];
  pendingQuotes.clear();
  let next = 0;
  const lane = async () => {
    while (next < ids.length) {
      const id = ids[next++] as string;
      for (;;) {
        const res = await fetch(`${apiUrl}/price-quote/${encodeURIComponent(id)}`).catch(() => undefined);
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

async function apiStats(): Promise<{ rss: number; heap_used: number; waiting: number } | undefined> {
  const res = await fetch(`${apiUrl}/bench/stats`).catch(() => undefined);
  return res?.ok ? ((await res.json()) as { rss: number; heap_used: number; waiting: number }) : undefined;
}

// ---------------------------------------------------------------- report
function table(phases: PhaseResult[]): string {
  const head = [
    "phase",
    "req",
    "req/s",
    "p50",
    "p90",
    "p99",
    "p99.9",
    "max",
    "200",
    "202",
    "503",
    "504",
    "other",
    "late",
    "cal",
    "fsync",
  ];
  const rows = phases.map((p) => {
    const s = p.status;
    const other = Object.entries(s)
      .filter(([k]) => !["200", "202", "503", "504"].includes(k))
      .reduce((n, [, v]) => n + v, 0);
    return [
      p.name,
      p.requests,
      p.throughput,
      p.p50_ms,
      p.p90_ms,
      p.p99_ms,
      p.p999_ms,
      p.max_ms,
      s["200"] ?? 0,
      s["202"] ?? 0,
      s["503"] ?? 0,
      s["504"] ?? 0,
      other,
      p.deadline_violations,
      p.calibration_ms ?? "-",
      p.fsync_us ?? "-",
    ].map(String);
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number)))
      .join("  ");
  const procs = phases.flatMap((p) => [
    ...p.processes.map(
      (q) =>
        `  ${p.name.padEnd(18)} ${q.name.padEnd(22)} cpu ${String(q.cpu_pct).padStart(6)}%  waiting ${String(q.wait_pct).padStart(6)}%  rss ${q.rss_mib} MiB`,
    ),
    ...(p.machine
      ? [
          `  ${p.name.padEnd(18)} ${"machine".padEnd(22)} ${p.machine.cores} cores, ${p.machine.busy_pct}% busy`,
        ]
      : []),
  ]);
  return [
    line(head),
    ...rows.map(line),
    "",
    "latency in ms; late = answered after the deadline + 50 ms;",
    "cal = ms for a fixed piece of CPU work, fsync = µs to write and sync 4 KiB, both just before the phase",
    "cpu and waiting (ready to run, but no core was free) in % of one core",
    "",
    ...procs,
  ].join("\n");
}

/** Each run's figures and their spread: one run on a shared machine proves little. */
function perRun(
  durables: { result: PhaseResult }[],
  baselines: { result: PhaseResult }[],
): {
  each: Record<string, number | null>[];
  spread: Record<string, { min: number; median: number; max: number }>;
} {
  const ratio = (a: number, b: number | undefined) =>
    b === undefined ? null : Math.round((a / Math.max(0.001, b)) * 100) / 100;
  const each = durables.map(({ result: d }, i): Record<string, number | null> => {
    const b = baselines[i]?.result;
    return {
      durable_p50_ms: d.p50_ms,
      durable_p99_ms: d.p99_ms,
      durable_throughput: d.throughput,
      baseline_p50_ms: b?.p50_ms ?? null,
      baseline_p99_ms: b?.p99_ms ?? null,
      ratio_p50: ratio(d.p50_ms, b?.p50_ms),
      ratio_p99: ratio(d.p99_ms, b?.p99_ms),
      durable_calibration_ms: d.calibration_ms ?? null,
      baseline_calibration_ms: b?.calibration_ms ?? null,
      durable_fsync_us: d.fsync_us ?? null,
    };
  });
  const spread: Record<string, { min: number; median: number; max: number }> = {};
  for (const key of Object.keys(each[0] ?? {})) {
    const xs = each.map((r) => r[key]).filter((x): x is number => typeof x === "number");
    const mid = median(xs);
    if (mid === undefined) continue;
    spread[key] = { min: Math.min(...xs), median: Math.round(mid * 1000) / 1000, max: Math.max(...xs) };
  }
  return { each, spread };
}

// ---------------------------------------------------------------- run
let exitCode = 0;
try {
  if (!apiUrl) await startSystem();
  console.log(
    `load: API ${apiUrl}, deadline ${deadlineMs} ms, ${values.colocated ? "quotes computed in the API (colocated)" : `${values["pricing-workers"]} pricing worker(s)`}${synchronous ? `, server commits synced: ${synchronous}` : ""}`,
  );
  // Warm up both routes (JIT, connections, the price list's first reads).
  await drive({
    name: "warmup",
    url: `${apiUrl}/price-quote`,
    body: quoteBody,
    durationS: 2,
    rate: 100,
    deadlineMs,
    timeoutMs: 10_000,
  });
  const baselineAvailable =
    (
      await fetch(`${apiUrl}/bench/price-quote`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(quoteBody()),
      }).catch(() => undefined)
    )?.status === 200;
  await drive({
    name: "warmup",
    url: `${apiUrl}/bench/price-quote`,
    body: quoteBody,
    durationS: 1,
    rate: 100,
    deadlineMs,
    timeoutMs: 10_000,
  });
  await settle202s();
  const memBefore = await apiStats();

  const phases: PhaseResult[] = [];
  const shape = values.concurrency
    ? { concurrency: num("concurrency", 1) }
    : { rate: Number(values.rate ?? 500) };
  // Every process compiles its hot code in the first seconds at full load;
  // a service is measured after that, and the warm-up is shown on its own.
  let warmup: PhaseResult | undefined;
  if (warmupS > 0) {
    warmup = (await phase("warmup", "/price-quote", { ...shape, durationS: warmupS })).result;
    phases.push(warmup);
    await settle202s();
    if (baselineAvailable)
      await phase("warmup-baseline", "/bench/price-quote", { ...shape, durationS: Math.max(1, warmupS / 5) });
  }
  let capacity: { rate: number; throughput: number; p99_ms: number } | undefined;

  if (values["find-capacity"]) {
    // Ramp until the durable route stops answering everything with 200 within the deadline.
    for (const rate of [100, 200, 400, 600, 800, 1000, 1200, 1500, 1800, 2200, 2600, 3000, 3500, 4000]) {
      const { result: p } = await phase(`durable@${rate}`, "/price-quote", { rate, durationS: 5 });
      await settle202s();
      const ok = (p.status["200"] ?? 0) / Math.max(1, p.requests);
      console.log(
        `  ${rate} req/s offered: ${p.throughput} req/s, p99 ${p.p99_ms} ms, ${Math.round(ok * 1000) / 10}% 200`,
      );
      if (ok < 0.99 || p.p99_ms > deadlineMs || p.throughput < rate * 0.95) break;
      capacity = { rate, throughput: p.throughput, p99_ms: p.p99_ms };
    }
    if (!capacity) throw new Error("the durable route did not hold even 100 req/s");
    console.log(`load: capacity ≈ ${capacity.throughput} req/s (p99 ${capacity.p99_ms} ms); now twice that`);
    Object.assign(shape, { rate: capacity.rate * 2 });
  }

  // With --runs, the phases alternate so that a slow spell of the machine hits both routes alike.
  const durableRuns: Awaited<ReturnType<typeof phase>>[] = [];
  const baselineRuns: Awaited<ReturnType<typeof phase>>[] = [];
  const after202 = { completed: 0, timed_out: 0, still_pending: 0 };
  for (let run = 1; run <= runs; run++) {
    const suffix = runs > 1 ? `#${run}` : "";
    const d = await phase(`durable${suffix}`, "/price-quote", {
      ...shape,
      durationS,
      kill: values["kill-workers"],
    });
    durableRuns.push(d);
    phases.push(d.result);
    const settled = await settle202s();
    after202.completed += settled.completed;
    after202.timed_out += settled.timed_out;
    after202.still_pending += settled.still_pending;
    if (baselineAvailable) {
      const b = await phase(`baseline${suffix}`, "/bench/price-quote", { ...shape, durationS });
      baselineRuns.push(b);
      phases.push(b.result);
    }
  }
  const durable =
    runs > 1 ? Recorder.pooled("durable", durableRuns) : (durableRuns[0] as (typeof durableRuns)[0]).result;
  const baseline =
    baselineRuns.length === 0
      ? undefined
      : runs > 1
        ? Recorder.pooled("baseline", baselineRuns)
        : (baselineRuns[0] as (typeof baselineRuns)[0]).result;
  if (runs > 1) {
    phases.push(durable);
    if (baseline) phases.push(baseline);
  }
  await Bun.sleep(1_000);
  const memAfter = await apiStats();

  const failures: string[] = [];
  const bad = Object.entries(durable.status).filter(([s]) => !["200", "202", "503", "504"].includes(s));
  if (durable.deadline_violations > 0 && !values["kill-workers"])
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

  const pick = (p: PhaseResult) => ({
    requests: p.requests,
    throughput: p.throughput,
    p50_ms: p.p50_ms,
    p90_ms: p.p90_ms,
    p99_ms: p.p99_ms,
    p999_ms: p.p999_ms,
    max_ms: p.max_ms,
    status: p.status,
    deadline_violations: p.deadline_violations,
    processes: p.processes,
    machine: p.machine ?? null,
    calibration_ms: p.calibration_ms,
    fsync_us: p.fsync_us,
  });
  const report = {
    deadline_ms: deadlineMs,
    shape,
    repeat,
    pricing_workers: values.colocated ? 0 : Number(values["pricing-workers"]),
    colocated: values.colocated,
    synchronous: synchronous ?? null,
    kill_workers: values["kill-workers"],
    warmup_s: warmupS,
    warmup: warmup ? pick(warmup) : null,
    capacity,
    durable: pick(durable),
    baseline: baseline ? pick(baseline) : null,
    ratio_p50: baseline ? Math.round((durable.p50_ms / Math.max(0.001, baseline.p50_ms)) * 100) / 100 : null,
    ratio_p99: baseline ? Math.round((durable.p99_ms / Math.max(0.001, baseline.p99_ms)) * 100) / 100 : null,
    runs: runs > 1 ? perRun(durableRuns, baselineRuns) : undefined,
    deadline_violations: durable.deadline_violations,
    quotes_202: after202,
    api_heap_mib:
      memBefore && memAfter
        ? {
            before: +(memBefore.heap_used / 1048576).toFixed(1),
            after: +(memAfter.heap_used / 1048576).toFixed(1),
          }
        : null,
    checks: failures.length === 0 ? "passed" : failures,
  };
  console.log(`\n${table(phases)}\n`);
  console.log(JSON.stringify({ ...report, durable: undefined, baseline: undefined }, null, 2));
  if (values.json)
    writeFileSync(values.json, `${JSON.stringify({ ...report, timelines: phases }, null, 2)}\n`);
  if (values.html) writeFileSync(values.html, renderHtml("Load test: POST /price-quote", phases, report));
  exitCode = failures.length === 0 ? 0 : 1;
} catch (error) {
  console.error("load:", error);
  exitCode = 1;
} finally {
  await stopSystem();
}
process.exit(exitCode);
