import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { API_RUNTIMES, type ApiRuntime, protocolCall, sendWebhook } from "../../harness/index.ts";
import { answers200, call, jobDone, requestQuote } from "../support/http.ts";
import { E2E_TIMEOUT } from "../support/processes.ts";
import { TEST_SECRET, WRONG_SECRET } from "../support/secrets.ts";
import { type Stack, startStack } from "./stack.ts";

/**
 * The whole suite with the API on `runtime`; the workers and the server are
 * the same processes on either. Every title names the runtime. With
 * `resonateAuth` only the main flows run, on a server that checks a token on
 * every request (each process with its own: `RESONATE_TOKEN_CLAIMS`).
 */
function serviceSuite(runtime: ApiRuntime, { resonateAuth = false } = {}) {
  let stack: Stack;
  const doneJob = (id: string) => jobDone(stack.api, id);
  const approval = (
    id: string,
    body: object,
    extra: { signWith?: string; at?: Date; retries?: number; backoffMs?: number } = {},
  ) =>
    sendWebhook({
      url: `${stack.api.url}/webhooks/approval/${id}`,
      secret: TEST_SECRET,
      body: JSON.stringify(body),
      ...extra,
    });

  const server = resonateAuth ? "Resonate server checking tokens" : "Resonate server";
  describe(`the service across real processes (API on ${runtime}, four worker groups, ${server})`, () => {
    beforeAll(async () => {
      stack = await startStack({ apiRuntime: runtime, ...(resonateAuth ? { resonateAuth } : {}) });
    }, E2E_TIMEOUT);
    afterAll(() => stack?.stop(), E2E_TIMEOUT);

    test(`the API process runs on ${runtime}`, () => {
      expect(stack.api.runtime).toBe(runtime);
      expect(stack.api.output()).toMatch(
        new RegExp(`^api listening on \\S+ \\(docs at .*, runtime ${runtime}, pid api-\\S+\\)$`, "m"),
      );
    });

    test(
      "submit and poll: the order runs through db, payment webhook and carrier exactly once",
      async () => {
        const body = {
          order_id: "e2e-1",
          items: [
            { sku: "sku-1", qty: 2 },
            { sku: "sku-2", qty: 1 },
          ],
        };
        const res = await call(stack.api, "POST", "/jobs", body);
        expect(res.status).toBe(202);
        expect(res.headers.get("location")).toBe("/jobs/order%3Ae2e-1");
        expect((await call(stack.api, "POST", "/jobs", body)).body).toEqual({
          job_id: "order:e2e-1",
          status: "started",
        });
        const done = await doneJob("order:e2e-1");
        expect(done.result).toMatchObject({ order_id: "e2e-1", status: "completed" });
        expect(stack.sandbox.payment.chargesFor("e2e-1")).toHaveLength(1);
        expect(stack.sandbox.carrier.shipmentsFor("e2e-1")).toHaveLength(1);
        expect(
          (await call(stack.api, "POST", "/jobs", { ...body, items: [{ sku: "sku-1", qty: 1 }] })).status,
        ).toBe(409);
      },
      E2E_TIMEOUT,
    );

    test(
      "webhook-gated: duplicate, contradicting, badly signed, stale and unknown deliveries",
      async () => {
        const started = await call(stack.api, "POST", "/orders/e2e-2/approve-and-ship");
        expect(started.body).toEqual({ job_id: "ship:e2e-2", status: "pending_approval" });
        // Until the workflow waits, the API answers 503 + Retry-After; the sender retries like a real one.
        const accepted = (
          await approval("e2e-2", { approved: true, approver: "ops" }, { retries: 20, backoffMs: 50 })
        ).at(-1);
        expect(accepted?.status).toBe(200);

        const [bad] = await approval("e2e-2", { approved: false }, { signWith: WRONG_SECRET });
        expect(bad?.status).toBe(401);
        const [stale] = await approval("e2e-2", { approved: true }, { at: new Date(Date.now() - 3_600_000) });
        expect(stale?.status).toBe(401);
        const [dup] = await approval("e2e-2", { approved: true, approver: "ops" });
        expect(dup?.status).toBe(200);
        expect(JSON.parse(dup?.body ?? "{}")).toMatchObject({ outcome: "approved", duplicate: true });
        const [contra] = await approval("e2e-2", { approved: false });
        expect(contra?.status).toBe(409);
        const [unknown] = await approval("e2e-never", { approved: true });
        expect(unknown?.status).toBe(404);

        expect((await doneJob("ship:e2e-2")).result).toMatchObject({ status: "shipped", approver: "ops" });
        expect(stack.sandbox.carrier.shipmentsFor("e2e-2")).toHaveLength(1);
      },
      E2E_TIMEOUT,
    );

    test(
      "a rejected approval ends without shipping",
      async () => {
        await call(stack.api, "POST", "/orders/e2e-3/approve-and-ship");
        const deliveries = await approval(
          "e2e-3",
          { approved: false, reason: "no stock" },
          { retries: 20, backoffMs: 50 },
        );
        expect(deliveries.at(-1)?.status).toBe(200);
        expect((await doneJob("ship:e2e-3")).result).toEqual({
          order_id: "e2e-3",
          status: "rejected",
          reason: "no stock",
        });
        expect(stack.sandbox.carrier.shipmentsFor("e2e-3")).toHaveLength(0);
      },
      E2E_TIMEOUT,
    );

    test(
      "synchronous quote: 200 within the deadline, same id for the same request",
      async () => {
        const a = await call(stack.api, "POST", "/price-quote", { sku: "sku-42", qty: 3 });
        expect(a.status).toBe(200);
        expect(a.body).toMatchObject({ sku: "sku-42", qty: 3, currency: "USD", price: expect.any(String) });
        const b = await call(stack.api, "POST", "/price-quote", { sku: "sku-42", qty: 3 });
        expect(b.body).toEqual(a.body);
      },
      E2E_TIMEOUT,
    );

    test(
      "RPC across groups: Idempotency-Key replay returns the same order; a different body is 422",
      async () => {
        const headers = { "idempotency-key": "cart-1" };
        const first = await call(
          stack.api,
          "POST",
          "/users/bob/orders",
          { cart: [{ sku: "sku-5", qty: 2 }] },
          headers,
        );
        expect(first.status).toBe(201);
        const again = await call(
          stack.api,
          "POST",
          "/users/bob/orders",
          { cart: [{ sku: "sku-5", qty: 2 }] },
          headers,
        );
        expect(again).toMatchObject({ status: 201, body: first.body });
        const other = await call(
          stack.api,
          "POST",
          "/users/bob/orders",
          { cart: [{ sku: "sku-6", qty: 1 }] },
          headers,
        );
        expect(other.status).toBe(422);
        const list = await call(stack.api, "GET", "/users/bob/orders");
        expect(list.body).toEqual({ user_id: "bob", orders: [first.body] });
      },
      E2E_TIMEOUT,
    );

    test("readyz reports the Resonate server reachable", async () => {
      expect(await call(stack.api, "GET", "/readyz")).toMatchObject({
        status: 200,
        body: { status: "ready" },
      });
    });

    if (resonateAuth)
      test("the server refuses a request without a token; business holds a checkout:-scoped one", async () => {
        expect((await protocolCall(stack.server.url, "promise.get", { id: "order:e2e-1" })).status).toBe(401);
        const business = stack.tokens?.business ?? "";
        const claims = JSON.parse(Buffer.from(business.split(".")[1] ?? "", "base64url").toString());
        expect(claims).toMatchObject({ role: "worker", prefix: "checkout:" });
        expect(stack.server.authenticated).toBe(true);
      });
  });

  if (resonateAuth) return;
  describe(`quotes when pricing is slow or absent (API on ${runtime})`, () => {
    test(
      "slow pricing: 202 + Location past the deadline, then 200 from GET",
      async () => {
        await using slow = await startStack({
          apiRuntime: runtime,
          groups: ["pricing-workers", "db"],
          apiEnv: { QUOTE_DEADLINE_MS: "100", PRICING_DELAY_MS: "1000" },
        });
        const res = await call(slow.api, "POST", "/price-quote", { sku: "sku-8", qty: 1 });
        expect(res.status).toBe(202);
        expect(res.headers.get("retry-after")).toBe("1");
        const location = res.headers.get("location") as string;
        const done = await answers200(slow.api, location);
        expect(done.body.quote_id).toBe(res.body.quote_id);
      },
      E2E_TIMEOUT,
    );

    test(
      "no pricing worker: the quote's own timeout passes and it answers 504",
      async () => {
        await using none = await startStack({
          apiRuntime: runtime,
          groups: ["db"],
          apiEnv: { QUOTE_TIMEOUT_MS: "700", QUOTE_MAX_WAIT_MS: "5000" },
        });
        const res = await requestQuote(none.api, { sku: "sku-8", qty: 1 }, 4);
        expect(res.status).toBe(504);
        expect(res.body.error).toMatchObject({ code: "quote_timed_out" });
      },
      E2E_TIMEOUT,
    );
  });

  describe(`co-located mode: the API on ${runtime} runs every durable function itself`, () => {
    test(
      "the same routes work with no worker processes",
      async () => {
        await using colo = await startStack({
          apiRuntime: runtime,
          groups: [],
          apiEnv: { MODE: "colocated" },
        });
        expect((await call(colo.api, "POST", "/price-quote", { sku: "sku-1", qty: 1 })).status).toBe(200);
        await call(colo.api, "POST", "/jobs", { order_id: "colo-1", items: [{ sku: "sku-1", qty: 1 }] });
        const done = await jobDone(colo.api, "order:colo-1");
        expect(done.result).toMatchObject({ status: "completed" });
        expect(colo.sandbox.payment.chargesFor("colo-1")).toHaveLength(1);
      },
      E2E_TIMEOUT,
    );
  });
}

for (const runtime of API_RUNTIMES) serviceSuite(runtime);
serviceSuite("bun", { resonateAuth: true });
