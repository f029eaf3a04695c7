/**
 * Reading the Prometheus text format back (harness/load/prometheus.ts), as
 * the metrics tests and the load report do, and the load report's view of
 * the API's metrics over a run.
 */
import { describe, expect, test } from "bun:test";
import { Counter, Histogram, Registry } from "prom-client";
import { ApiMetrics } from "../../core/observability/metrics.ts";
import { labelValues, parseScrape, quantile, total } from "../../harness/load/prometheus.ts";
import { apiMetricsReport } from "../../harness/load/report.ts";

describe("reading a scrape", () => {
  test("keeps each label set of a histogram apart, which parse-prometheus-text-format alone folds together", async () => {
    const registry = new Registry();
    const h = new Histogram({
      name: "t_seconds",
      help: "t",
      labelNames: ["route"],
      buckets: [0.1, 1],
      registers: [registry],
    });
    h.observe({ route: "/a" }, 0.05);
    h.observe({ route: "/b" }, 0.5);
    h.observe({ route: "/b" }, 5);
    new Counter({ name: "c_total", help: "c", labelNames: ["x"], registers: [registry] }).inc({ x: "1" }, 3);
    const s = parseScrape(await registry.metrics());
    expect(total(s, "t_seconds_count", { route: "/a" })).toBe(1);
    expect(total(s, "t_seconds_count", { route: "/b" })).toBe(2);
    expect(total(s, "t_seconds_bucket", { route: "/b", le: "1" })).toBe(1);
    expect(total(s, "t_seconds_sum")).toBeCloseTo(5.55);
    expect(total(s, "c_total", { x: "1" })).toBe(3);
    expect(labelValues(s, "t_seconds_count", "route").sort()).toEqual(["/a", "/b"]);
  });

  test("interpolates a quantile within its bucket, as histogram_quantile does, over the difference of two scrapes", async () => {
    const registry = new Registry();
    const h = new Histogram({ name: "q_seconds", help: "q", buckets: [1, 2, 4], registers: [registry] });
    for (const v of [0.5, 0.5]) h.observe(v);
    const before = parseScrape(await registry.metrics());
    for (const v of [1.5, 1.5, 3, 3]) h.observe(v);
    const after = parseScrape(await registry.metrics());
    // Of the four between the scrapes, two are in (1, 2] and two in (2, 4].
    expect(quantile(0.5, after, "q_seconds", {}, before)).toBeCloseTo(2);
    expect(quantile(0.75, after, "q_seconds", {}, before)).toBeCloseTo(3);
    expect(quantile(0.5, before, "q_seconds")).toBeCloseTo(0.5);
    expect(quantile(0.5, before, "q_seconds", {}, before)).toBeUndefined();
  });
});

describe("the load report's view of the API's metrics", () => {
  test("counts each route's requests, statuses and latency, and the quotes shed and deferred, between two scrapes", async () => {
    const m = new ApiMetrics();
    const quote = { method: "POST", route: "/price-quote" };
    m.httpRequests.inc({ ...quote, status: "200" });
    m.httpSeconds.observe({ ...quote, status: "200" }, 0.002);
    const before = parseScrape(await m.registry.metrics());
    for (const [status, seconds] of [
      ["200", 0.003],
      ["200", 0.004],
      ["503", 0.0005],
      ["202", 1.0],
    ] as const) {
      m.httpRequests.inc({ ...quote, status });
      m.httpSeconds.observe({ ...quote, status }, seconds);
    }
    m.quotesShed.inc({ reason: "max_waiting" });
    m.quotesPending.inc();
    const after = parseScrape(await m.registry.metrics());
    const report = apiMetricsReport(before, after);
    expect(report.routes).toEqual([
      {
        ...quote,
        requests: 4,
        status: { 200: 2, 202: 1, 503: 1 },
        p50_ms: expect.any(Number),
        p99_ms: expect.any(Number),
        mean_ms: 251.875,
      },
    ]);
    expect(report.routes[0]?.p50_ms).toBeLessThanOrEqual(5);
    expect(report.quotes).toEqual({ shed: { max_waiting: 1 }, pending_202: 1, cached: 0 });
  });
});
