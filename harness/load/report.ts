import { labelValues, quantile, type Scrape, total } from "./prometheus.ts";
import { median, type PhaseResult } from "./recorder.ts";

/** `a / b` to two decimals; `null` when there is no `b`. */
export const ratio = (a: number, b: number | undefined): number | null =>
  b === undefined ? null : Math.round((a / Math.max(0.001, b)) * 100) / 100;

/** A phase's figures as the JSON report gives them (no timeline, no distribution). */
export const pick = (p: PhaseResult) => ({
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

/** The phases as a text table, then each phase's processes. */
export function table(phases: PhaseResult[]): string {
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
  const nameWidth = Math.max(18, ...phases.map((p) => p.name.length));
  const procs = phases.flatMap((p) => [
    ...p.processes.map(
      (q) =>
        `  ${p.name.padEnd(nameWidth)} ${q.name.padEnd(22)} cpu ${String(q.cpu_pct).padStart(6)}%  waiting ${String(q.wait_pct).padStart(6)}%  rss ${q.rss_mib} MiB`,
    ),
    ...(p.machine
      ? [
          `  ${p.name.padEnd(nameWidth)} ${"machine".padEnd(22)} ${p.machine.cores} cores, ${p.machine.busy_pct}% busy`,
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
export function perRun(
  durables: { result: PhaseResult }[],
  baselines: { result: PhaseResult }[],
): {
  each: Record<string, number | null>[];
  spread: Record<string, { min: number; median: number; max: number }>;
} {
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

/** What the API's own `GET /metrics` saw of one route over a run. */
export interface RouteMetrics {
  method: string;
  route: string;
  requests: number;
  /** Requests by status. */
  status: Record<string, number>;
  /** From the API's latency histogram: bucket-interpolated, so as coarse as its buckets. */
  p50_ms: number | null;
  p99_ms: number | null;
  mean_ms: number | null;
}

/** The API's metrics over a run: the difference between a scrape at its start and one at its end. */
export interface ApiMetricsReport {
  routes: RouteMetrics[];
  quotes: {
    /** Answered 503, by reason: too many waiting, or not started within the deadline. */
    shed: Record<string, number>;
    /** Answered 202: the deadline passed and the quote went on. */
    pending_202: number;
    /** Answered from the API's cache of finished quotes. */
    cached: number;
  };
}

const round3 = (x: number | undefined) => (x === undefined ? null : Math.round(x * 1000_000) / 1000);

/** Route by route, what the API counted between the `before` and `after` scrapes of its `/metrics`. */
export function apiMetricsReport(before: Scrape, after: Scrape): ApiMetricsReport {
  const delta = (name: string, where: Record<string, string> = {}) =>
    total(after, name, where) - total(before, name, where);
  const routes = new Map<string, { method: string; route: string }>();
  for (const s of after.get("http_requests_total") ?? []) {
    const { method = "", route = "" } = s.labels;
    routes.set(`${method} ${route}`, { method, route });
  }
  const rows: RouteMetrics[] = [...routes.values()].flatMap(({ method, route }) => {
    const where = { method, route };
    const requests = delta("http_requests_total", where);
    if (requests <= 0) return [];
    const status: Record<string, number> = {};
    for (const code of labelValues(after, "http_requests_total", "status").sort()) {
      const n = delta("http_requests_total", { ...where, status: code });
      if (n > 0) status[code] = n;
    }
    const count = delta("http_request_duration_seconds_count", where);
    const sum = delta("http_request_duration_seconds_sum", where);
    return [
      {
        method,
        route,
        requests,
        status,
        p50_ms: round3(quantile(0.5, after, "http_request_duration_seconds", where, before)),
        p99_ms: round3(quantile(0.99, after, "http_request_duration_seconds", where, before)),
        mean_ms: count > 0 ? round3(sum / count) : null,
      },
    ];
  });
  rows.sort((a, b) => b.requests - a.requests);
  const shed: Record<string, number> = {};
  for (const reason of labelValues(after, "quote_requests_shed_total", "reason")) {
    shed[reason] = delta("quote_requests_shed_total", { reason });
  }
  return {
    routes: rows,
    quotes: {
      shed,
      pending_202: delta("quote_requests_pending_total"),
      cached: delta("quote_requests_cached_total"),
    },
  };
}

/** The API's own view of the run as a text table. */
export function apiMetricsTable(label: string, m: ApiMetricsReport): string {
  const head = ["route", "req", "p50", "p99", "mean", "statuses"];
  const rows = m.routes.map((r) => [
    `${r.method} ${r.route}`,
    String(r.requests),
    String(r.p50_ms ?? "-"),
    String(r.p99_ms ?? "-"),
    String(r.mean_ms ?? "-"),
    Object.entries(r.status)
      .map(([code, n]) => `${code}:${n}`)
      .join(" "),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) =>
        i === 0 || i === cells.length - 1 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number),
      )
      .join("  ")
      .trimEnd();
  const shed = Object.entries(m.quotes.shed)
    .map(([reason, n]) => `${reason} ${n}`)
    .join(", ");
  return [
    `${label}: what the API's /metrics counted over the run (latency in ms, from its histogram buckets)`,
    line(head),
    ...rows.map(line),
    `quotes: 503 shed ${shed || "0"}; 202 pending ${m.quotes.pending_202}; from cache ${m.quotes.cached}`,
  ].join("\n");
}
