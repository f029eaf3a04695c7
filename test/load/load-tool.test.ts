import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { spawnProcess } from "../../harness/index.ts";
import { E2E_TIMEOUT } from "../fixtures.ts";

const LOAD = resolve(import.meta.dir, "../../harness/load/main.ts");

describe("npm run load", () => {
  test(
    "starts the system, drives the durable and baseline routes, and writes the table, JSON and HTML report",
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "load-test-"));
      try {
        const json = join(dir, "load.json");
        const html = join(dir, "load.html");
        await using run = spawnProcess({
          name: "load",
          cmd: [process.execPath, LOAD, "--duration", "2", "--rate", "40", "--json", json, "--html", html],
        });
        expect(await run.exited).toBe(0);
        expect(run.output()).toMatch(/^phase\s+req\s+req\/s\s+p50/m);
        const report = JSON.parse(readFileSync(json, "utf8"));
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
            ].sort(),
          );
          expect(report[phase].requests).toBe(80);
          expect(report[phase].status).toEqual({ 200: 80 });
        }
        expect(report.ratio_p50).toBeGreaterThan(0);
        expect(report.ratio_p99).toBeGreaterThan(0);
        expect(report.deadline_violations).toBe(0);
        expect(report.checks).toBe("passed");
        expect(report.durable.processes.map((p: { name: string }) => p.name).sort()).toEqual(
          ["api", "db#0", "load-generator", "pricing-workers#0", "resonate-server"].sort(),
        );
        const page = readFileSync(html, "utf8");
        expect(page.match(/<svg/g)).toHaveLength(2);
        expect(page).toContain("Latency over time");
        expect(page).toContain("Latency distribution");
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    E2E_TIMEOUT,
  );

  test(
    "refuses a bad flag value with a clear message",
    async () => {
      await using run = spawnProcess({ name: "load", cmd: [process.execPath, LOAD, "--repeat", "3"] });
      expect(await run.exited).toBe(2);
      expect(run.output()).toContain("--repeat is the share of requests that repeat a recent quote, 0 to 1");
    },
    E2E_TIMEOUT,
  );
});
