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
