import parsePrometheusTextFormat from "parse-prometheus-text-format";

/** One series: its labels and its value. */
export interface Sample {
  labels: Record<string, string>;
  value: number;
}

/** Every series of a scrape, by series name (`x_total`, `x_seconds_bucket`, `x_seconds_count`, …). */
export type Scrape = ReadonlyMap<string, Sample[]>;

/**
 * Parses the Prometheus text format with parse-prometheus-text-format. A
 * histogram is read as untyped: that package (1.1.1) folds the buckets of
 * every label set of a histogram into one, so each of its `_bucket`, `_sum`
 * and `_count` series is read as a family of its own, labels kept.
 */
export function parseScrape(text: string): Scrape {
  const untyped = text.replace(/^# TYPE (\S+) (histogram|summary)$/gm, "# TYPE $1 untyped");
  const series = new Map<string, Sample[]>();
  for (const family of parsePrometheusTextFormat(untyped)) {
    const samples = family.metrics
      .filter((m) => m.value !== undefined)
      .map((m) => ({ labels: m.labels ?? {}, value: Number(m.value) }));
    series.set(family.name, [...(series.get(family.name) ?? []), ...samples]);
  }
  return series;
}

/** Fetches and parses `url` (a `/metrics` endpoint); throws unless it answers 200. */
export async function scrape(url: string, headers: Record<string, string> = {}): Promise<Scrape> {
  const res = await fetch(url, { headers });
  if (!res.ok) throw new Error(`scrape ${url}: HTTP ${res.status}`);
  return parseScrape(await res.text());
}

const matches = (labels: Record<string, string>, want: Record<string, string>) =>
  Object.entries(want).every(([k, v]) => labels[k] === v);

/** The sum of series `name` over the label sets that have `where`'s labels (0 when there are none). */
export function total(s: Scrape, name: string, where: Record<string, string> = {}): number {
  return (s.get(name) ?? []).filter((x) => matches(x.labels, where)).reduce((n, x) => n + x.value, 0);
}

/** The distinct values label `label` takes in series `name`. */
export function labelValues(s: Scrape, name: string, label: string): string[] {
  return [
    ...new Set((s.get(name) ?? []).flatMap((x) => (x.labels[label] === undefined ? [] : [x.labels[label]]))),
  ];
}

/**
 * The `q` quantile of histogram `name` (its `_bucket` series) over the
 * label sets that have `where`'s labels, interpolated within the bucket as
 * Prometheus' `histogram_quantile` does; `before` subtracts an earlier scrape,
 * so the quantile is of what happened between the two. Undefined when the
 * histogram saw nothing.
 */
export function quantile(
  q: number,
  s: Scrape,
  name: string,
  where: Record<string, string> = {},
  before?: Scrape,
): number | undefined {
  const byBound = new Map<number, number>();
  const add = (from: Scrape, sign: number) => {
    for (const x of from.get(`${name}_bucket`) ?? []) {
      if (!matches(x.labels, where)) continue;
      const le = x.labels.le === "+Inf" ? Number.POSITIVE_INFINITY : Number(x.labels.le);
      byBound.set(le, (byBound.get(le) ?? 0) + sign * x.value);
    }
  };
  add(s, 1);
  if (before) add(before, -1);
  const bounds = [...byBound.entries()].sort((a, b) => a[0] - b[0]);
  const count = bounds.at(-1)?.[1] ?? 0;
  if (count <= 0) return undefined;
  const rank = q * count;
  let lower = 0;
  let below = 0;
  for (const [le, cumulative] of bounds) {
    if (cumulative >= rank) {
      if (le === Number.POSITIVE_INFINITY) return lower;
      return lower + ((le - lower) * (rank - below)) / Math.max(1e-12, cumulative - below);
    }
    lower = le;
    below = cumulative;
  }
  return lower;
}
