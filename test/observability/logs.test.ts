/**
 * Logs a person can follow: one JSON line per request in the API, with the
 * request id it echoes back and the workflow it touched, and a line at the
 * start and end of every durable function run in the workers naming the
 * same workflow. Across real processes (`startSystem`), and in-process for
 * a request that fails with an unexpected error.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Resonate, ResonateTimeoutException } from "@resonatehq/sdk";
import { loadConfig, targetsFor } from "../../core/config.ts";
import { Db, Orders, Pricing } from "../../core/functions.ts";
import { createLogger } from "../../core/observability/logger.ts";
import { type System, startSystem, waitFor } from "../../harness/index.ts";
import { createApp } from "../../src/app.ts";
import { UNCHECKED } from "../../src/auth/service.ts";
import { makeDeps } from "../../src/deps.ts";
import { TEST_API_AUTH } from "../support/api-auth.ts";
import { call, jobDone, withAuthorization } from "../support/http.ts";
import { E2E_TIMEOUT, runId } from "../support/processes.ts";
import { TEST_SECRET } from "../support/secrets.ts";

type Line = Record<string, unknown>;

/** The JSON lines a process printed, parsed; its other lines (the ready line) left out. */
const jsonLines = (output: string): Line[] =>
  output
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Line);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe("request and function logs across real processes", () => {
  let system: System;
  beforeAll(async () => {
    system = await startSystem({
      workers: { "order-workers": 1, "pricing-workers": 1, db: 1 },
      sandbox: { webhookDelayMs: 20 },
      webhookSecret: TEST_SECRET,
      apiAuth: TEST_API_AUTH,
    });
  }, E2E_TIMEOUT);
  afterAll(() => system?.stop(), E2E_TIMEOUT);

  /** A worker's lines about `workflowId`, once the last one (`function end` of `fn`) has reached this process. */
  const workerLines = (group: string, workflowId: string, fn: string) =>
    waitFor(
      () => {
        const w = system.workers.live().find((p) => p.name.startsWith(group));
        const lines = jsonLines(w?.output() ?? "").filter((l) => l.workflow_id === workflowId);
        return lines.some((l) => l.msg === "function end" && l.function === fn) ? lines : undefined;
      },
      { timeout: 5_000, message: `${group}'s function end line of ${fn} for ${workflowId}` },
    );

  /** The API's line for `requestId`, once it has printed it. */
  const requestLine = (requestId: string) =>
    waitFor(
      () => jsonLines(system.api.output()).find((l) => l.request_id === requestId && l.msg === "request"),
      { timeout: 5_000, message: `the API's request line for ${requestId}` },
    );

  test("the ready lines the harness waits for are printed as before", () => {
    expect(system.api.output()).toMatch(/^api listening on http:\/\/127\.0\.0\.1:\d+ \(docs at /);
    for (const w of system.workers.live()) expect(w.output()).toMatch(/^worker ready \S+ \S+$/m);
  });

  test(
    "a job's request line has its fields and echoed request id; the workers' start and end lines name its workflow",
    async () => {
      const requestId = `trace-${runId()}`;
      const orderId = `log-${runId()}`;
      const res = await fetch(`${system.apiUrl}/jobs`, {
        method: "POST",
        headers: await withAuthorization("/jobs", {
          "content-type": "application/json",
          "x-request-id": requestId,
        }),
        body: JSON.stringify({ order_id: orderId, items: [{ sku: "sku-1", qty: 1 }] }),
      });
      expect(res.status).toBe(202);
      expect(res.headers.get("x-request-id")).toBe(requestId);
      const workflowId = `order:${orderId}`;
      await jobDone(system.api, workflowId);

      expect(await requestLine(requestId)).toEqual({
        level: "info",
        time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        service: "api",
        pid: expect.any(String),
        request_id: requestId,
        method: "POST",
        route: "/jobs",
        path: "/jobs",
        status: 202,
        duration_ms: expect.any(Number),
        workflow_id: workflowId,
        msg: "request",
      });

      const orders = await workerLines("order-workers", workflowId, Orders.processOrder.name);
      const db = await workerLines("db", workflowId, Db.reserveStock.name);
      const runs = orders.filter((l) => l.function === Orders.processOrder.name);
      expect(runs[0]).toEqual({
        level: "info",
        time: expect.any(String),
        service: "worker",
        group: "order-workers",
        pid: expect.any(String),
        function: Orders.processOrder.name,
        id: workflowId,
        workflow_id: workflowId,
        run: 1,
        msg: "function start",
      });
      // The workflow replays from the start each time it resumes; the last run ends it.
      expect(runs.filter((l) => l.msg === "function start").map((l) => l.run)).toEqual(
        runs.filter((l) => l.msg === "function start").map((_, i) => i + 1),
      );
      expect(runs.at(-1)).toMatchObject({ msg: "function end", outcome: "resolved", id: workflowId });
      expect(db.filter((l) => l.function === Db.reserveStock.name).map((l) => l.msg)).toEqual([
        "function start",
        "function end",
      ]);
    },
    E2E_TIMEOUT,
  );

  test("a request without a usable x-request-id gets a new one, echoed and logged", async () => {
    for (const sent of [undefined, "has spaces in it"]) {
      const res = await fetch(`${system.apiUrl}/jobs/order:no-such-${runId()}`, {
        headers: await withAuthorization("/jobs", sent ? { "x-request-id": sent } : {}),
      });
      expect(res.status).toBe(404);
      const requestId = res.headers.get("x-request-id") as string;
      expect(requestId).toMatch(UUID);
      expect(await requestLine(requestId)).toMatchObject({
        route: "/jobs/:id",
        status: 404,
        promise_id: expect.stringMatching(/^order:no-such-/),
      });
    }
  });

  test("a quote's line names the quote, and the pricing worker's lines name it too", async () => {
    const requestId = `quote-${runId()}`;
    const res = await call(
      system.api,
      "POST",
      "/price-quote",
      { sku: "sku-2", qty: 3, customer_id: requestId },
      {
        "x-request-id": requestId,
      },
    );
    expect(res.status).toBe(200);
    const quoteId = res.body.quote_id as string;
    expect(await requestLine(requestId)).toMatchObject({
      route: "/price-quote",
      status: 200,
      workflow_id: quoteId,
    });
    const runs = await workerLines("pricing-workers", quoteId, Pricing.computeQuote.name);
    expect(runs[0]).toMatchObject({ msg: "function start", function: Pricing.computeQuote.name, run: 1 });
  });
});

/** An in-process app (callers not checked: the request must reach the route) whose Resonate reads throw `error`, and its log lines. */
function appWhoseReadsThrow(error: Error, pid: string) {
  const lines: Line[] = [];
  const log = createLogger({
    level: "info",
    base: { service: "api" },
    destination: { write: (line: string) => lines.push(JSON.parse(line)) },
  });
  const config = loadConfig({ MODE: "colocated", WEBHOOK_SECRET: TEST_SECRET });
  const resonate = new Resonate({ group: "api", pid });
  resonate.promises.get = async () => {
    throw error;
  };
  const app = createApp(makeDeps(resonate, config, targetsFor(config), Date.now, { log }), {
    webhookSecret: TEST_SECRET,
    auth: UNCHECKED,
  });
  const requestLine = () =>
    waitFor(() => lines.find((l) => l.msg === "request"), { timeout: 2_000, message: "the request line" });
  return { app, lines, requestLine, stop: () => resonate.stop() };
}

describe("a request that fails with an unexpected error", () => {
  test("is logged once with its stack and request id, which the 500 and its header name", async () => {
    const { app, lines, requestLine, stop } = appWhoseReadsThrow(
      new Error("the store is on fire"),
      "logs-test",
    );
    try {
      const res = await app.handle(
        new Request("http://api.test/jobs/order:x", { headers: { "x-request-id": "req-500" } }),
      );
      expect(res.status).toBe(500);
      expect(res.headers.get("x-request-id")).toBe("req-500");
      expect(await res.json()).toEqual({
        error: { code: "internal_error", message: "internal error (request req-500)" },
      });
      // The request's own line is written last, once the response is handed back.
      await requestLine();
      const failed = lines.find((l) => l.msg === "request failed");
      expect(failed).toMatchObject({
        level: "error",
        request_id: "req-500",
        method: "GET",
        path: "/jobs/order:x",
        err: { message: "the store is on fire", stack: expect.stringContaining("Error") },
      });
      expect(lines.filter((l) => l.msg === "request")).toEqual([
        expect.objectContaining({ request_id: "req-500", status: 500, promise_id: "order:x" }),
      ]);
    } finally {
      await stop();
    }
  });

  test("a Resonate server that does not answer is a 503 with Retry-After, not a 500, and no error line", async () => {
    const { app, lines, requestLine, stop } = appWhoseReadsThrow(
      new ResonateTimeoutException("platform failure: Failed to connect"),
      "logs-test-down",
    );
    try {
      const res = await app.handle(
        new Request("http://api.test/jobs/order:x", { headers: { "x-request-id": "req-503" } }),
      );
      expect(res.status).toBe(503);
      expect(res.headers.get("retry-after")).toBe("1");
      expect(await res.json()).toEqual({
        error: {
          code: "resonate_unavailable",
          message: "the Resonate server did not answer; retry the same request",
        },
      });
      expect(await requestLine()).toMatchObject({ request_id: "req-503", status: 503 });
      expect(lines.filter((l) => l.msg === "request failed")).toEqual([]);
    } finally {
      await stop();
    }
  });
});
