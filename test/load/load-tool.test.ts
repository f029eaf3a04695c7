import { describe, expect, test } from "bun:test";
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join, resolve } from "node:path";
import { API_AUTH_DEFAULTS } from "../../harness/api-auth.ts";
import { SERVER_TUNING, spawnProcess, startSystem } from "../../harness/index.ts";
import { TEST_API_AUTH } from "../support/api-auth.ts";
import { E2E_TIMEOUT } from "../support/processes.ts";
import { tempDir } from "../support/temp.ts";

const LOAD = resolve(import.meta.dir, "../../harness/load/main.ts");
const STAND_IN = resolve(import.meta.dir, "stand-in-resonate-fixture.ts");

/**
 * Runs the load tool with `args` and `--json` (and `--html`, if `html`);
 * expects it to exit 0 and returns its output, JSON report and HTML page
 * (empty without `html`).
 */
async function loadRun(
  args: string[],
  opts: { env?: Record<string, string | undefined>; html?: boolean } = {},
) {
  using dir = tempDir("load-test-");
  const json = join(dir.path, "load.json");
  const html = join(dir.path, "load.html");
  await using run = spawnProcess({
    name: "load",
    cmd: [process.execPath, LOAD, ...args, "--json", json, ...(opts.html ? ["--html", html] : [])],
    env: opts.env,
  });
  expect(await run.exited).toBe(0);
  return {
    output: run.output(),
    report: JSON.parse(readFileSync(json, "utf8")),
    page: opts.html ? readFileSync(html, "utf8") : "",
  };
}

/** An executable file in `dir` that runs the stand-in for the real binary; what RESONATE_BIN names. */
function standInBinary(dir: string): string {
  const bin = join(dir, "resonate");
  writeFileSync(bin, `#!/bin/sh\nexec '${process.execPath}' '${STAND_IN}' "$@"\n`);
  chmodSync(bin, 0o755);
  return bin;
}

/**
 * Each process's CPU and wait for a core are percentages of one core (a
 * process uses at most every core), and the machine's load is a percentage
 * of all its cores.
 */
function expectScheduling(phase: {
  processes: { name: string; cpu_pct: number; wait_pct: number; rss_mib: number }[];
  machine: { cores: number; busy_pct: number };
}) {
  for (const p of phase.processes) {
    expect(p.cpu_pct).toBeGreaterThanOrEqual(0);
    expect(p.cpu_pct).toBeLessThanOrEqual(100 * availableParallelism());
    expect(p.wait_pct).toBeGreaterThanOrEqual(0);
    expect(Number.isFinite(p.wait_pct)).toBe(true);
    expect(p.rss_mib).toBeGreaterThan(0);
  }
  expect(phase.machine.cores).toBe(availableParallelism());
  expect(phase.machine.busy_pct).toBeGreaterThan(0);
  expect(phase.machine.busy_pct).toBeLessThanOrEqual(100);
}

describe("npm run load", () => {
  test(
    "starts the system, drives the durable and baseline routes, and writes the table, JSON and HTML report",
    async () => {
      const { output, report, page } = await loadRun(["--duration", "2", "--rate", "40"], { html: true });
      expect(output).toMatch(/^phase\s+req\s+req\/s\s+p50/m);
      for (const phase of ["durable", "baseline"]) {
        expect(Object.keys(report[phase]).sort()).toEqual(
          [
            "requests",
            "throughput",
            "p50_ms",
            "p90_ms",
            "p99_ms",
            "p999_ms",
            "max_ms",
            "status",
            "deadline_violations",
            "processes",
            "machine",
            "calibration_ms",
            "fsync_us",
          ].sort(),
        );
        expect(report[phase].requests).toBe(80);
        expect(report[phase].status).toEqual({ 200: 80 });
      }
      expect(report.durable.calibration_ms).toBeGreaterThan(0);
      expect(report.durable.fsync_us).toBeGreaterThan(0);
      expect(report.ratio_p50).toBeGreaterThan(0);
      expect(report.ratio_p99).toBeGreaterThan(0);
      expect(report.deadline_violations).toBe(0);
      expect(report.checks).toBe("passed");
      expect(report.synchronous).toBe("normal");
      expect(output).toContain("server commits synced: normal");
      expect(report.durable.processes.map((p: { name: string }) => p.name).sort()).toEqual(
        ["api", "db#0", "load-generator", "pricing-workers#0", "resonate-server"].sort(),
      );
      expectScheduling(report.durable);
      expect(output).toMatch(/resonate-server\s+cpu\s+[\d.]+%\s+waiting\s+[\d.]+%\s+rss/);
      expect(output).toMatch(/machine\s+\d+ cores, [\d.]+% busy/);
      expect(page.match(/<svg/g)).toHaveLength(2);
      expect(page).toContain("Latency over time");
      expect(page).toContain("Latency distribution");
      expect(page).toContain("waiting for a core");
    },
    E2E_TIMEOUT,
  );

  test(
    "with --runs, alternates the phases and reports each run, their spread, and the pooled latencies",
    async () => {
      const { output, report } = await loadRun(["--duration", "1", "--rate", "40", "--runs", "2"]);
      const rows = output
        .split("\n")
        .filter((line) => /^(durable|baseline)\S*\s+\d/.test(line))
        .map((line) => line.split(/\s+/)[0]);
      expect(rows).toEqual(["durable#1", "baseline#1", "durable#2", "baseline#2", "durable", "baseline"]);
      // The warm-up runs first, as long as a phase by default, on its own row and outside every figure.
      expect(output).toMatch(/^warmup\s+40\s/m);
      expect(report.warmup_s).toBe(1);
      expect(report.warmup).toMatchObject({ requests: 40, status: { 200: 40 } });
      expect(report.runs.each).toHaveLength(2);
      for (const phase of ["durable", "baseline"]) {
        const perRun = report.timelines.filter((p: { name: string }) => p.name.startsWith(`${phase}#`));
        expect(perRun.map((p: { requests: number }) => p.requests)).toEqual([40, 40]);
        // Pooled: every request of both runs in one histogram.
        expect(report[phase].requests).toBe(80);
        expect(report[phase].status).toEqual({ 200: 80 });
        const p99s = perRun.map((p: { p99_ms: number }) => p.p99_ms);
        expect(report.runs.spread[`${phase}_p99_ms`].min).toBe(Math.min(...p99s));
        expect(report.runs.spread[`${phase}_p99_ms`].max).toBe(Math.max(...p99s));
        expect(report[phase].max_ms).toBe(Math.max(...perRun.map((p: { max_ms: number }) => p.max_ms)));
        expectScheduling(report[phase]);
      }
      expect(report.checks).toBe("passed");
    },
    E2E_TIMEOUT,
  );

  test(
    "with --colocated, the API computes the quotes itself and no worker is started; --synchronous reaches the server",
    async () => {
      const { output, report } = await loadRun([
        "--duration",
        "1",
        "--rate",
        "40",
        "--colocated",
        "--synchronous",
        "full",
        "--warmup",
        "0",
      ]);
      expect(output).toContain("quotes computed in the API (colocated), server commits synced: full");
      expect(report).toMatchObject({
        colocated: true,
        pricing_workers: 0,
        synchronous: "full",
        checks: "passed",
        warmup_s: 0,
        warmup: null,
      });
      expect(output).not.toMatch(/^warmup\s/m);
      expect(report.durable.status).toEqual({ 200: 40 });
      expect(report.durable.processes.map((p: { name: string }) => p.name).sort()).toEqual(
        ["api", "load-generator", "resonate-server"].sort(),
      );
    },
    E2E_TIMEOUT,
  );

  test(
    "names the server and its poll intervals in the header and the JSON, and runs ours by default even when RESONATE_BIN is set",
    async () => {
      const { output, report } = await loadRun(
        ["--duration", "1", "--rate", "40", "--warmup", "0", "--messages-poll-interval", "5"],
        { env: { RESONATE_BIN: "/nonexistent/resonate" } },
      );
      expect(output).toContain(
        `load: server harness (messages polled every 5 ms, timeouts every ${SERVER_TUNING.timeoutsPollIntervalMs} ms), API on bun, deadline 1000 ms, 1 pricing worker(s), server commits synced: normal`,
      );
      expect(report).toMatchObject({
        server: "harness",
        servers: ["harness"],
        api_runtime: "bun",
        messages_poll_interval_ms: { harness: 5 },
        timeouts_poll_interval_ms: SERVER_TUNING.timeoutsPollIntervalMs,
        checks: "passed",
      });
      expect(report.durable.status).toEqual({ 200: 40 });
    },
    E2E_TIMEOUT,
  );

  test(
    "with --api-runtime deno, the API runs on Deno, and the header, the JSON and the HTML name it",
    async () => {
      const { output, report, page } = await loadRun(
        ["--api-runtime", "deno", "--duration", "1", "--rate", "40", "--warmup", "0"],
        { html: true },
      );
      expect(output).toContain(
        `load: server harness (messages polled every ${SERVER_TUNING.messagesPollIntervalMs} ms, timeouts every ${SERVER_TUNING.timeoutsPollIntervalMs} ms), API on deno, deadline 1000 ms, 1 pricing worker(s), server commits synced: normal`,
      );
      expect(output).toMatch(/^load: harness server at http:\S+, API http:\S+ on deno$/m);
      expect(report).toMatchObject({ server: "harness", api_runtime: "deno", checks: "passed" });
      expect(report.durable.status).toEqual({ 200: 40 });
      expect(report.baseline.status).toEqual({ 200: 40 });
      expect(report.durable.processes.map((p: { name: string }) => p.name).sort()).toEqual(
        ["api", "db#0", "load-generator", "pricing-workers#0", "resonate-server"].sort(),
      );
      expect(page).toContain("<title>Load test: POST /price-quote on harness, API on deno</title>");
    },
    E2E_TIMEOUT,
  );

  test(
    "with --server both, runs ours, then the binary RESONATE_BIN names (here a stand-in that runs ours), in one report whose rows name their server",
    async () => {
      using bin = tempDir("load-test-");
      const { output, report, page } = await loadRun(
        ["--server", "both", "--duration", "1", "--rate", "40", "--warmup", "0"],
        { env: { RESONATE_BIN: standInBinary(bin.path) }, html: true },
      );
      expect(output).toContain(
        `load: servers harness then real (messages polled every ${SERVER_TUNING.messagesPollIntervalMs} ms, timeouts every ${SERVER_TUNING.timeoutsPollIntervalMs} ms), API on bun, deadline 1000 ms, 1 pricing worker(s), harness server commits synced: normal`,
      );
      const rows = output
        .split("\n")
        .filter((line) => /^\S+\s+\d+\s+\d+\s+[\d.]+\s/.test(line))
        .map((line) => line.split(/\s+/)[0]);
      expect(rows).toEqual(["harness:durable", "harness:baseline", "real:durable", "real:baseline"]);
      expect(output).toMatch(/^real\/harness, durable: p50 ×[\d.]+, p99 ×[\d.]+$/m);
      expect(report).toMatchObject({
        server: "both",
        servers: ["harness", "real"],
        api_runtime: "bun",
        messages_poll_interval_ms: {
          harness: SERVER_TUNING.messagesPollIntervalMs,
          real: SERVER_TUNING.messagesPollIntervalMs,
        },
        timeouts_poll_interval_ms: SERVER_TUNING.timeoutsPollIntervalMs,
        checks: "passed",
      });
      expect(Object.keys(report.by_server)).toEqual(["harness", "real"]);
      expect(report.by_server.harness.synchronous).toBe("normal");
      expect(report.by_server.real.synchronous).toBeNull();
      for (const server of ["harness", "real"]) {
        // The self-checks ran on each server's rows.
        expect(report.by_server[server]).toMatchObject({ checks: "passed", deadline_violations: 0 });
        expect(report.by_server[server].durable.status).toEqual({ 200: 40 });
        expect(report.by_server[server].baseline.status).toEqual({ 200: 40 });
      }
      const { harness, real } = report.by_server;
      expect(report.real_vs_harness).toEqual({
        durable_p50: Math.round((real.durable.p50_ms / harness.durable.p50_ms) * 100) / 100,
        durable_p99: Math.round((real.durable.p99_ms / harness.durable.p99_ms) * 100) / 100,
      });
      expect(report.timelines.map((p: { name: string }) => p.name)).toEqual(rows);
      for (const row of rows) expect(page).toContain(`<td>${row}</td>`);
    },
    E2E_TIMEOUT,
  );

  test(
    "with --url, sends the bearer token in API_TOKEN to the quote, baseline and stats routes, and stops before measuring when it has none",
    async () => {
      // The API the tool finds at --url, as a load run starts one: a pricing worker, the baseline routes, callers checked.
      await using system = await startSystem({
        workers: { db: 1, "pricing-workers": 1 },
        sandbox: false,
        apiAuth: TEST_API_AUTH,
        env: { BENCH_ROUTES: "1" },
      });
      const args = ["--url", system.apiUrl, "--duration", "1", "--rate", "40", "--warmup", "0"];
      {
        await using refused = spawnProcess({
          name: "load",
          cmd: [process.execPath, LOAD, ...args],
          env: { API_TOKEN: undefined },
        });
        expect(await refused.exited).toBe(1);
        expect(refused.output()).toContain(
          `load: API ${system.apiUrl} (already running; its server is not known here), no bearer token (API_TOKEN is not set)`,
        );
        expect(refused.output()).toContain(
          "wants a bearer token and none was given (set API_TOKEN): GET /price-quote/:quote_id answered 401",
        );
        expect(refused.output()).not.toMatch(/^durable\s/m);
      }
      const token = await TEST_API_AUTH.token("load-test", { scope: API_AUTH_DEFAULTS.operatorScope });
      const { output, report } = await loadRun(args, { env: { API_TOKEN: token } });
      expect(output).toContain("the bearer token in API_TOKEN");
      expect(report).toMatchObject({ server: null, checks: "passed" });
      expect(report.durable.status).toEqual({ 200: 40 });
      expect(report.baseline.status).toEqual({ 200: 40 });
      // Read from GET /bench/stats, which takes the token too.
      expect(report.api_heap_mib).toEqual({ before: expect.any(Number), after: expect.any(Number) });
    },
    E2E_TIMEOUT,
  );

  test(
    "refuses a bad flag value with a clear message",
    async () => {
      for (const [args, message, env = { RESONATE_BIN: "" }] of [
        [["--repeat", "3"], "--repeat is the share of requests that repeat a recent quote, 0 to 1"],
        [["--runs", "0"], '--runs must be a number ≥ 1, got "0"'],
        [["--runs", "1.5"], '--runs must be a whole number ≥ 1, got "1.5"'],
        [["--colocated", "--kill-workers"], "--colocated starts its own API with no workers"],
        [["--synchronous", "off"], '--synchronous must be one of full, normal, got "off"'],
        [["--warmup", "soon"], '--warmup must be a number ≥ 0, got "soon"'],
        [
          ["--synchronous", "full", "--url", "http://127.0.0.1:9"],
          "--synchronous sets the server this tool starts; it does not go with --url",
        ],
        [["--server", "nope"], '--server must be one of harness, real, both, got "nope"'],
        [["--api-runtime", "node"], '--api-runtime must be one of bun, deno, got "node"'],
        [
          ["--api-runtime", "deno", "--url", "http://127.0.0.1:9"],
          "--api-runtime sets the API this tool starts; it does not go with --url",
        ],
        [
          ["--server", "real"],
          "--server real runs the real server that RESONATE_BIN names, and it is not set",
        ],
        [
          ["--server", "both"],
          "RESONATE_BIN=/nonexistent/resonate is not an executable file (--server both)",
          { RESONATE_BIN: "/nonexistent/resonate" },
        ],
        [
          ["--server", "both", "--url", "http://127.0.0.1:9"],
          "--server sets the server this tool starts; it does not go with --url",
        ],
        [
          ["--server", "real", "--synchronous", "full"],
          "--synchronous sets our server's commit log; the real server has none, so not with --server real",
        ],
        [["--messages-poll-interval", "0"], '--messages-poll-interval must be a number ≥ 1, got "0"'],
        [
          ["--messages-poll-interval", "2.5"],
          '--messages-poll-interval must be a whole number of ms ≥ 1, got "2.5"',
        ],
      ] as const) {
        await using run = spawnProcess({ name: "load", cmd: [process.execPath, LOAD, ...args], env });
        expect(await run.exited).toBe(2);
        expect(run.output()).toContain(message);
      }
    },
    E2E_TIMEOUT,
  );
});
