import * as hdr from "hdr-histogram-js";
import type { Watched } from "./procstat.ts";

/** What one phase of a load run measured. */
export interface PhaseResult {
  name: string;
  requests: number;
  duration_s: number;
  throughput: number;
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
  p999_ms: number;
  max_ms: number;
  /** Responses by HTTP status; `error` counts connections that failed or timed out. */
  status: Record<string, number>;
  /** Responses later than the deadline plus 50 ms. */
  deadline_violations: number;
  /** Per second since the phase started: requests, p50, p99 and max latency (ms). */
  timeline: { t: number; requests: number; p50_ms: number; p99_ms: number; max_ms: number }[];
  /** Latency at each percentile, for the distribution plot. */
  distribution: { percentile: number; ms: number }[];
  /**
   * Per process, where known: CPU, and time its threads were ready to run
   * but had no core (both % of one core), and memory (RSS MiB).
   */
  processes: Watched["processes"];
  /** The machine's cores and how busy they were over the phase (% of all of them). */
  machine?: Watched["machine"];
  /** `calibrationMs()` just before the phase (the median over runs when pooled). */
  calibration_ms?: number;
  /** `fsyncCalibrationUs()` just before the phase (the median over runs when pooled). */
  fsync_us?: number;
}

const newHistogram = () =>
  hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 120_000_000,
    numberOfSignificantValueDigits: 3,
  });

const ms = (us: number) => Math.round(us) / 1000;

/** Records latencies (µs, from each request's scheduled start) in an HDR histogram, overall and per second. */
export class Recorder {
  readonly #all = newHistogram();
  readonly #seconds: { requests: number; histogram: hdr.Histogram }[] = [];
  readonly #status: Record<string, number> = {};
  #violations = 0;
  readonly #start: number;
  #last = 0;
  #durationS = 0;

  constructor(
    readonly name: string,
    readonly deadlineMs: number,
  ) {
    this.#start = performance.now();
  }

  /** One answer (or failure) for a request scheduled at `scheduledAt` (performance.now() ms). */
  record(scheduledAt: number, status: number | "error"): void {
    const now = performance.now();
    const latencyUs = Math.max(1, Math.round((now - scheduledAt) * 1000));
    this.#all.recordValue(latencyUs);
    const second = Math.floor((scheduledAt - this.#start) / 1000);
    while (this.#seconds.length <= second) this.#seconds.push({ requests: 0, histogram: newHistogram() });
    const bucket = this.#seconds[second] as { requests: number; histogram: hdr.Histogram };
    bucket.requests++;
    bucket.histogram.recordValue(latencyUs);
    this.#status[String(status)] = (this.#status[String(status)] ?? 0) + 1;
    if (latencyUs > (this.deadlineMs + 50) * 1000) this.#violations++;
    this.#last = now;
  }

  get count(): number {
    return this.#all.totalCount;
  }

  /** The phase's figures; the recorder stays usable for `Recorder.pooled`. */
  finish(watched: Watched = { processes: [] }): PhaseResult {
    this.#durationS = Math.max(0.001, (this.#last - this.#start) / 1000);
    const timeline = this.#seconds.map((b, t) => ({
      t,
      requests: b.requests,
      p50_ms: ms(b.histogram.getValueAtPercentile(50)),
      p99_ms: ms(b.histogram.getValueAtPercentile(99)),
      max_ms: ms(b.histogram.maxValue),
    }));
    const result = summarize(
      this.name,
      this.#all,
      this.#durationS,
      this.#status,
      this.#violations,
      watched.processes,
      timeline,
    );
    if (watched.machine) result.machine = watched.machine;
    return result;
  }

  /**
   * One result for several finished runs of the same phase: latencies pooled
   * in one histogram (so its percentiles are those of every request, not an
   * average of percentiles), counts and durations summed, CPU, waits and
   * the machine's load averaged.
   */
  static pooled(name: string, runs: { recorder: Recorder; result: PhaseResult }[]): PhaseResult {
    const all = newHistogram();
    const status: Record<string, number> = {};
    let violations = 0;
    let durationS = 0;
    for (const { recorder } of runs) {
      all.add(recorder.#all);
      for (const [k, v] of Object.entries(recorder.#status)) status[k] = (status[k] ?? 0) + v;
      violations += recorder.#violations;
      durationS += recorder.#durationS;
    }
    const byName = new Map<string, { cpu: number; wait: number; rss: number; n: number }>();
    for (const { result } of runs) {
      for (const p of result.processes) {
        const acc = byName.get(p.name) ?? { cpu: 0, wait: 0, rss: 0, n: 0 };
        byName.set(p.name, {
          cpu: acc.cpu + p.cpu_pct,
          wait: acc.wait + p.wait_pct,
          rss: Math.max(acc.rss, p.rss_mib),
          n: acc.n + 1,
        });
      }
    }
    const mean = (sum: number, n: number) => Math.round((sum / n) * 10) / 10;
    const processes = [...byName].map(([procName, acc]) => ({
      name: procName,
      cpu_pct: mean(acc.cpu, acc.n),
      wait_pct: mean(acc.wait, acc.n),
      rss_mib: acc.rss,
    }));
    const pooled = summarize(name, all, durationS, status, violations, processes, []);
    const machines = runs.flatMap(({ result }) => (result.machine ? [result.machine] : []));
    const first = machines[0];
    if (first) {
      pooled.machine = {
        cores: first.cores,
        busy_pct: mean(
          machines.reduce((sum, m) => sum + m.busy_pct, 0),
          machines.length,
        ),
      };
    }
    const calibration = median(runs.map(({ result }) => result.calibration_ms));
    const fsync = median(runs.map(({ result }) => result.fsync_us));
    if (calibration !== undefined) pooled.calibration_ms = Math.round(calibration * 100) / 100;
    if (fsync !== undefined) pooled.fsync_us = Math.round(fsync);
    return pooled;
  }
}

function summarize(
  name: string,
  all: hdr.Histogram,
  durationS: number,
  status: Record<string, number>,
  violations: number,
  processes: PhaseResult["processes"],
  timeline: PhaseResult["timeline"],
): PhaseResult {
  const at = (p: number) => ms(all.getValueAtPercentile(p));
  return {
    name,
    requests: all.totalCount,
    duration_s: Math.round(durationS * 100) / 100,
    throughput: Math.round(all.totalCount / durationS),
    p50_ms: at(50),
    p90_ms: at(90),
    p99_ms: at(99),
    p999_ms: at(99.9),
    max_ms: ms(all.maxValue),
    status: { ...status },
    deadline_violations: violations,
    timeline,
    distribution: [0, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.99, 100].map((p) => ({
      percentile: p,
      ms: at(p),
    })),
    processes,
  };
}

/** The median of the numbers among `values` (the mean of the middle two for an even count). */
export function median(values: (number | null | undefined)[]): number | undefined {
  const xs = values.filter((x): x is number => typeof x === "number").sort((a, b) => a - b);
  if (xs.length === 0) return undefined;
  const mid = xs.length >> 1;
  return xs.length % 2 ? (xs[mid] as number) : ((xs[mid - 1] as number) + (xs[mid] as number)) / 2;
}
