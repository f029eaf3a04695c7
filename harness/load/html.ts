import type { PhaseResult } from "./recorder.ts";

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"];
const esc = (s: string) =>
  s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c] as string);

interface Series {
  label: string;
  points: [number, number][];
}

/** A line chart as inline SVG; `logX` plots x as -log10(1 - x/100) for percentile axes. */
function chart(
  title: string,
  xLabel: string,
  yLabel: string,
  series: Series[],
  opts: { logX?: boolean } = {},
): string {
  const W = 760;
  const H = 320;
  const L = 60;
  const B = 40;
  // Four legend entries per line above the plot.
  const T = 16 + 14 * Math.ceil(series.length / 4);
  const R = 20;
  const tx = (x: number) => (opts.logX ? -Math.log10(Math.max(1e-4, 1 - x / 100)) : x);
  const all = series.flatMap((s) => s.points);
  const xs = all.map(([x]) => tx(x));
  const ys = all.map(([, y]) => y);
  const xMin = Math.min(0, ...xs);
  const xMax = Math.max(1, ...xs);
  const yMax = Math.max(1, ...ys) * 1.1;
  const px = (x: number) => L + ((tx(x) - xMin) / (xMax - xMin || 1)) * (W - L - R);
  const py = (y: number) => H - B - (y / yMax) * (H - B - T);
  const lines = series
    .map((s, i) => {
      const d = s.points
        .map(([x, y], j) => `${j === 0 ? "M" : "L"}${px(x).toFixed(1)},${py(y).toFixed(1)}`)
        .join(" ");
      return `<path d="${d}" fill="none" stroke="${COLORS[i % COLORS.length]}" stroke-width="1.8"/>`;
    })
    .join("");
  const legend = series
    .map(
      (s, i) =>
        `<text x="${L + 10 + (i % 4) * 170}" y="${14 + 14 * Math.floor(i / 4)}" fill="${COLORS[i % COLORS.length]}" font-size="12">■ ${esc(s.label)}</text>`,
    )
    .join("");
  const yTicks = Array.from({ length: 5 }, (_, i) => (yMax / 4) * i)
    .map(
      (v) =>
        `<text x="${L - 6}" y="${py(v) + 4}" text-anchor="end" font-size="11">${v.toFixed(v < 10 ? 1 : 0)}</text>`,
    )
    .join("");
  const xTicks = opts.logX
    ? [0, 50, 90, 99, 99.9, 99.99]
        .map((p) => `<text x="${px(p)}" y="${H - B + 16}" text-anchor="middle" font-size="11">${p}</text>`)
        .join("")
    : Array.from({ length: 6 }, (_, i) => xMin + ((xMax - xMin) / 5) * i)
        .map(
          (v) =>
            `<text x="${px(v)}" y="${H - B + 16}" text-anchor="middle" font-size="11">${Math.round(v)}</text>`,
        )
        .join("");
  return `<figure><figcaption>${esc(title)}</figcaption><svg width="${W}" height="${H}" xmlns="http://www.w3.org/2000/svg" font-family="sans-serif">
<rect x="${L}" y="${T}" width="${W - L - R}" height="${H - B - T}" fill="#fafafa" stroke="#ccc"/>${lines}${legend}${yTicks}${xTicks}
<text x="${(W + L) / 2}" y="${H - 6}" text-anchor="middle" font-size="12">${esc(xLabel)}</text>
<text x="14" y="${(H - B + T) / 2}" transform="rotate(-90 14 ${(H - B + T) / 2})" text-anchor="middle" font-size="12">${esc(yLabel)}</text>
</svg></figure>`;
}

/** A self-contained HTML report: table, latency over time, latency distribution. */
export function renderHtml(title: string, phases: PhaseResult[], summary: Record<string, unknown>): string {
  const rows = phases
    .map(
      (p) =>
        `<tr><td>${esc(p.name)}</td><td>${p.requests}</td><td>${p.throughput}</td><td>${p.p50_ms}</td><td>${p.p90_ms}</td><td>${p.p99_ms}</td><td>${p.p999_ms}</td><td>${p.max_ms}</td><td>${esc(JSON.stringify(p.status))}</td><td>${p.deadline_violations}</td><td>${p.calibration_ms ?? "-"}</td><td>${p.fsync_us ?? "-"}</td></tr>`,
    )
    .join("");
  const overTime = chart(
    "Latency over time (p99 per second)",
    "seconds since the phase started",
    "ms",
    // Pooled phases of several runs have no single timeline.
    phases
      .filter((p) => p.timeline.length > 0)
      .map((p) => ({
        label: `${p.name} p99`,
        points: p.timeline.map((s) => [s.t, s.p99_ms] as [number, number]),
      })),
  );
  const distribution = chart(
    "Latency distribution",
    "percentile",
    "ms",
    phases.map((p) => ({
      label: p.name,
      points: p.distribution
        .filter((d) => d.percentile < 100)
        .map((d) => [d.percentile, d.ms] as [number, number]),
    })),
    { logX: true },
  );
  const procs = phases
    .flatMap((p) => [
      ...p.processes.map(
        (q) =>
          `<tr><td>${esc(p.name)}</td><td>${esc(q.name)}</td><td>${q.cpu_pct}</td><td>${q.wait_pct}</td><td>${q.rss_mib}</td></tr>`,
      ),
      ...(p.machine
        ? [
            `<tr><td>${esc(p.name)}</td><td>machine (${p.machine.cores} cores)</td><td colspan="3">${p.machine.busy_pct}% busy</td></tr>`,
          ]
        : []),
    ])
    .join("");
  return `<!doctype html><html><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font-family:sans-serif;margin:2em;max-width:900px}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child,th:first-child{text-align:left}figcaption{font-weight:bold;margin-top:1.5em}pre{background:#f4f4f4;padding:1em}</style>
</head><body><h1>${esc(title)}</h1>
<table><tr><th>phase</th><th>requests</th><th>req/s</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>p99.9 ms</th><th>max ms</th><th>status</th><th>late</th><th>calibration ms</th><th>fsync µs</th></tr>${rows}</table>
${overTime}${distribution}
<h2>Processes</h2><table><tr><th>phase</th><th>process</th><th>CPU % of a core</th><th>waiting for a core, % of a core</th><th>RSS MiB</th></tr>${procs}</table>
<h2>Summary</h2><pre>${esc(JSON.stringify(summary, null, 2))}</pre></body></html>`;
}
