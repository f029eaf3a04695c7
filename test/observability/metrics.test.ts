/**
 * Metrics across real processes: the whole system (`startSystem`, the API on
 * Bun and on Deno) on a harness Resonate server started with a metrics
 * port; the API's `GET /metrics`, a pricing and an order worker's metrics
 * ports and the server's are scraped and parsed with
 * parse-prometheus-text-format before and after quotes, a job and webhooks,
 * and the series they name must exist and have moved.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Db, Orders, Pricing } from "../../core/functions.ts";
import {
  API_RUNTIMES,
  type ApiRuntime,
  protocolCall,
  type System,
  sendWebhook,
  startSystem,
  waitFor,
} from "../../harness/index.ts";
import { type Scrape, scrape, total } from "../../harness/load/prometheus.ts";
import type { WorkerProcess } from "../../harness/service.ts";
import { TEST_API_AUTH } from "../support/api-auth.ts";
import { call, jobDone } from "../support/http.ts";
import { E2E_TIMEOUT, runId } from "../support/processes.ts";
import { TEST_SECRET, WRONG_SECRET } from "../support/secrets.ts";

/** Growth of each named series between two scrapes (`total` over the label sets that have `where`'s labels). */
const grew = (before: Scrape, after: Scrape, name: string, where: Record<string, string> = {}) =>
  total(after, name, where) - total(before, name, where);

function metricsSuite(runtime: ApiRuntime) {
  describe(`metrics of the API (on ${runtime}), a worker and the harness Resonate server`, () => {
    let system: System;
    const worker = (group: string) =>
      system.workers.live().find((w) => w.name.startsWith(group)) as WorkerProcess;
    const scrapeAll = async () => ({
      api: await scrape(`${system.apiUrl}/metrics`),
      pricing: await scrape(worker("pricing-workers").metricsUrl as string),
      orders: await scrape(worker("order-workers").metricsUrl as string),
      db: await scrape(worker("db").metricsUrl as string),
      server: await scrape(system.server?.metricsUrl as string),
    });

    beforeAll(async () => {
      system = await startSystem({
        // Our server with metrics; a pending task is offered again after 300 ms.
        server: { kind: "harness", metrics: true, tickMs: 100, retryTimeoutMs: 300 },
        workers: { "order-workers": 1, "pricing-workers": 1, db: 1 },
        sandbox: { webhookDelayMs: 20 },
        webhookSecret: TEST_SECRET,
        apiAuth: TEST_API_AUTH,
        apiRuntime: runtime,
        env: { METRICS_PORT: "0", RESONATE_TTL_MS: "2000" },
        // One quote waiting at a time, each taking 300 ms: a second one at once is shed.
        apiEnv: { QUOTE_MAX_WAITING: "1", BENCH_ROUTES: "1", PRICING_DELAY_MS: "300" },
      });
    }, E2E_TIMEOUT);
    afterAll(async () => {
      await system?.stop();
    }, E2E_TIMEOUT);

    test("every process announces where its metrics are, and the API's route is left out of the document", async () => {
      for (const w of system.workers.live())
        expect(w.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      expect(system.server?.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      const res = await fetch(`${system.apiUrl}/metrics`);
      expect(res.headers.get("content-type")).toStartWith("text/plain");
      const document = (await call(system.api, "GET", "/docs/json")).body as {
        paths: Record<string, unknown>;
      };
      expect(Object.keys(document.paths)).not.toContain("/metrics");
    });

    test(
      "after quotes, a job and webhooks, the named series exist and moved",
      async () => {
        const id = runId();
        const before = await scrapeAll();

        // Quotes: one computed (200) while a second is shed (503), one past its wait (202), an unknown sku (422).
        const computing = call(system.api, "POST", "/price-quote", {
          sku: "sku-3",
          qty: 2,
          customer_id: `m-${id}`,
        });
        // The second is sent while the first holds the only waiting place.
        await waitFor(
          async () => (await call(system.api, "GET", "/bench/stats")).body.waiting === 1 || undefined,
          {
            timeout: 5_000,
            message: "the first quote waiting",
          },
        );
        const shed = await call(system.api, "POST", "/price-quote", { sku: "sku-4", qty: 1 });
        const computed = await computing;
        expect([computed.status, shed.status]).toEqual([200, 503]);
        const pending = await call(
          system.api,
          "POST",
          "/price-quote",
          { sku: "sku-5", qty: 1, customer_id: `m-${id}` },
          { prefer: "wait=0.15" },
        );
        expect(pending.status).toBe(202);
        // Its result reaches the API's subscription too, which counts it as completed.
        await waitFor(
          async () =>
            (await call(system.api, "GET", `/price-quote/${pending.body.quote_id as string}`)).status ===
              200 || undefined,
          { timeout: 5_000, message: "the pending quote computed" },
        );
        expect((await call(system.api, "POST", "/price-quote", { sku: "sku-nope", qty: 1 })).status).toBe(
          422,
        );

        // A job: the sandbox charges and sends the payment webhook, which the API accepts.
        const job = await call(system.api, "POST", "/jobs", {
          order_id: `m-${id}`,
          items: [{ sku: "sku-1", qty: 1 }],
        });
        expect(job.status).toBe(202);
        await jobDone(system.api, `order:m-${id}`);
        // Webhooks the API refuses: a forged signature, and an approval for no order.
        const forged = await sendWebhook({
          url: `${system.apiUrl}/webhooks/approval/m-${id}`,
          secret: WRONG_SECRET,
          body: JSON.stringify({ approved: true }),
        });
        expect(forged.at(-1)?.status).toBe(401);
        const unknown = await sendWebhook({
          url: `${system.apiUrl}/webhooks/approval/none-${id}`,
          secret: TEST_SECRET,
          body: JSON.stringify({ approved: true }),
        });
        expect(unknown.at(-1)?.status).toBe(404);
        // A task for a group nobody serves: its execute finds no stream, and the server offers it again.
        await protocolCall(system.resonateUrl, "promise.create", {
          id: `unserved-${id}`,
          timeoutAt: Date.now() + 60_000,
          param: {},
          tags: { "resonate:target": "poll://any@nobody" },
        });
        const retried = { kind: "execute", reason: "retry_timeout" };
        await waitFor(
          async () =>
            grew(
              before.server,
              await scrape(system.server?.metricsUrl as string),
              "resonate_messages_retried_total",
              retried,
            ) > 0 || undefined,
          { timeout: 5_000, message: "a message retried" },
        );
        const after = await scrapeAll();

        const quote = Pricing.computeQuote.name;
        const order = Orders.processOrder.name;
        // The API: requests by route pattern, invocations through the Launcher, quotes shed and deferred, webhooks.
        expect(
          grew(before.api, after.api, "http_requests_total", {
            method: "POST",
            route: "/price-quote",
            status: "200",
          }),
        ).toBe(1);
        expect(
          grew(before.api, after.api, "http_requests_total", { route: "/price-quote", status: "503" }),
        ).toBe(1);
        expect(
          grew(before.api, after.api, "http_requests_total", { route: "/jobs/:id", method: "GET" }),
        ).toBeGreaterThan(0);
        expect(
          grew(before.api, after.api, "http_request_duration_seconds_count", { route: "/price-quote" }),
        ).toBe(4);
        expect(
          grew(before.api, after.api, "http_request_duration_seconds_bucket", { route: "/jobs", le: "+Inf" }),
        ).toBe(1);
        expect(grew(before.api, after.api, "durable_invocations_started_total", { function: quote })).toBe(3);
        expect(grew(before.api, after.api, "durable_invocations_started_total", { function: order })).toBe(1);
        expect(
          grew(before.api, after.api, "durable_invocations_finished_total", {
            function: quote,
            outcome: "completed",
          }),
        ).toBeGreaterThanOrEqual(1);
        expect(
          grew(before.api, after.api, "durable_invocations_finished_total", {
            function: quote,
            outcome: "failed",
          }),
        ).toBe(1);
        expect(
          grew(before.api, after.api, "durable_invocation_duration_seconds_count", { function: quote }),
        ).toBeGreaterThanOrEqual(2);
        expect(grew(before.api, after.api, "quote_requests_shed_total", { reason: "max_waiting" })).toBe(1);
        expect(grew(before.api, after.api, "quote_requests_pending_total")).toBe(1);
        expect(
          grew(before.api, after.api, "webhook_deliveries_total", {
            webhook: "payment",
            outcome: "accepted",
          }),
        ).toBe(1);
        expect(
          grew(before.api, after.api, "webhook_deliveries_total", {
            webhook: "approval",
            outcome: "bad_signature",
          }),
        ).toBe(1);
        expect(
          grew(before.api, after.api, "webhook_deliveries_total", {
            webhook: "approval",
            outcome: "unknown",
          }),
        ).toBe(1);

        // The workers: runs of each function, and their steps.
        expect(
          grew(before.pricing, after.pricing, "durable_function_starts_total", {
            function: quote,
            run: "first",
          }),
        ).toBeGreaterThanOrEqual(3);
        expect(
          grew(before.pricing, after.pricing, "durable_function_ends_total", {
            function: quote,
            outcome: "resolved",
          }),
        ).toBeGreaterThanOrEqual(2);
        expect(
          grew(before.pricing, after.pricing, "durable_function_ends_total", {
            function: quote,
            outcome: "rejected",
          }),
        ).toBe(1);
        // The API's PRICING_DELAY_MS is a ctx.run step of each compute_quote it starts.
        expect(
          grew(before.pricing, after.pricing, "durable_steps_total", { function: quote }),
        ).toBeGreaterThanOrEqual(3);
        expect(
          grew(before.orders, after.orders, "durable_function_starts_total", {
            function: order,
            run: "first",
          }),
        ).toBe(1);
        expect(
          grew(before.orders, after.orders, "durable_function_starts_total", {
            function: order,
            run: "replay",
          }),
        ).toBeGreaterThan(0);
        expect(
          grew(before.orders, after.orders, "durable_function_ends_total", {
            function: order,
            outcome: "resolved",
          }),
        ).toBe(1);
        // validate, the cancel check, charge, the seal before shipping, ship.
        expect(grew(before.orders, after.orders, "durable_steps_total", { function: order })).toBe(5);
        expect(grew(before.db, after.db, "durable_steps_total", { function: Db.reserveStock.name })).toBe(1);
        expect(after.orders.has("durable_step_retries_total")).toBe(true);
        expect(
          grew(before.orders, after.orders, "durable_function_run_duration_seconds_count", {
            function: order,
          }),
        ).toBe(1);

        // The server: requests by kind and status, messages taken and delivered, and the one offered again.
        expect(
          grew(before.server, after.server, "resonate_request_total", {
            kind: "promise.create",
            status: "200",
          }),
        ).toBeGreaterThan(0);
        expect(
          grew(before.server, after.server, "resonate_request_total", { kind: "task.acquire" }),
        ).toBeGreaterThan(0);
        expect(
          grew(before.server, after.server, "resonate_request_duration_seconds_count", {
            kind: "task.fulfill",
          }),
        ).toBeGreaterThan(0);
        expect(
          grew(before.server, after.server, "resonate_messages_total", { kind: "execute" }),
        ).toBeGreaterThan(0);
        expect(
          grew(before.server, after.server, "resonate_messages_total", { kind: "unblock" }),
        ).toBeGreaterThan(0);
        expect(
          grew(before.server, after.server, "resonate_deliveries_total", { status: "success" }),
        ).toBeGreaterThan(0);
        expect(
          grew(before.server, after.server, "resonate_deliveries_total", { status: "error" }),
        ).toBeGreaterThan(0);
        expect(
          grew(before.server, after.server, "resonate_messages_retried_total", {
            kind: "execute",
            reason: "retry_timeout",
          }),
        ).toBeGreaterThan(0);
      },
      E2E_TIMEOUT,
    );
  });
}

for (const runtime of API_RUNTIMES) metricsSuite(runtime);
