/**
 * Every route called through an Eden treaty client typed from the app
 * itself (`App`), so the TypeScript contract and the HTTP one cannot drift:
 * a renamed field, route or status fails the type check here, and a typed
 * call that the API answers differently fails the test. The
 * `@ts-expect-error` lines fail the type check if the client stops
 * refusing a wrong call.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { treaty } from "@elysiajs/eden";
import { waitFor } from "../../harness/index.ts";
import type { App } from "../../src/app.ts";
import { defaultAuthorization } from "../support/api-auth.ts";
import { startColocatedApi } from "../support/colocated-api.ts";
import { signedHeaders } from "../support/secrets.ts";

let api: Awaited<ReturnType<typeof startColocatedApi>>;
let client: ReturnType<typeof treaty<App>>;
beforeAll(async () => {
  api = await startColocatedApi();
  // Each call carries the tests' default token for its path (the user's own on /users/:id).
  client = treaty<App>(api.app, {
    headers: async (path) => ({ authorization: await defaultAuthorization(path) }),
  });
});
afterAll(() => api?.stop());

describe("the API through a client typed from the app", () => {
  test("health and readiness", async () => {
    expect((await client.healthz.get()).data).toEqual({ status: "ok" });
    expect((await client.readyz.get()).data).toEqual({ status: "ready" });
  });

  test("a job: submit, then read", async () => {
    const started = await client.jobs.post({ order_id: "eden-1", items: [{ sku: "sku-1", qty: 2 }] });
    expect(started.status).toBe(202);
    expect(started.data).toEqual({ job_id: "order:eden-1", status: "started" });
    const job = await client.jobs({ id: "order:eden-1" }).get();
    expect(job.status).toBe(200);
    expect(["running", "done"]).toContain(job.data?.status as string);

    const unknown = await client.jobs({ id: "order:eden-nobody" }).get();
    expect(unknown.status).toBe(404);
    expect(unknown.error?.value).toMatchObject({ error: { code: "not_found" } });

    // @ts-expect-error qty is a number
    await client.jobs.post({ order_id: "eden-x", items: [{ sku: "sku-1", qty: "2" }] });
    // @ts-expect-error items is required
    await client.jobs.post({ order_id: "eden-x" });
  });

  test("a quote: computed within the deadline, and read again by its id", async () => {
    const quote = await client["price-quote"].post(
      { sku: "sku-3", qty: 4 },
      { headers: { prefer: "wait=5" } },
    );
    expect(quote.status).toBe(200);
    const body = quote.data as { quote_id: string; price_cents: number; currency: string };
    expect(body.currency).toBe("USD");
    const again = await client["price-quote"]({ quote_id: body.quote_id }).get();
    expect(again.status).toBe(200);
    expect((again.data as { price_cents: number }).price_cents).toBe(body.price_cents);

    // @ts-expect-error sku is required
    await client["price-quote"].post({ qty: 4 });
  });

  test("a checkout, and the user's orders", async () => {
    const placed = await client
      .users({ id: "eden-u" })
      .orders.post({ cart: [{ sku: "sku-2", qty: 1 }] }, { headers: { "idempotency-key": "eden-k1" } });
    expect(placed.status).toBe(201);
    expect(placed.data).toMatchObject({ order_id: "eden-u:eden-k1", user_id: "eden-u", status: "completed" });
    const orders = await client.users({ id: "eden-u" }).orders.get();
    expect(orders.status).toBe(200);
    expect(orders.data?.orders.map((o) => o.order_id)).toEqual(["eden-u:eden-k1"]);

    // @ts-expect-error the cart holds line items
    await client.users({ id: "eden-u" }).orders.post({ cart: ["sku-2"] });
  });

  test("an approval: the order waits, the signed webhook decides, the job ships", async () => {
    const held = await client.orders({ id: "eden-a" })["approve-and-ship"].post();
    expect(held.data).toEqual({ job_id: "ship:eden-a", status: "pending_approval" });
    await waitFor(async () => (await api.resonate.promises.get("ship:eden-a.1")).state === "resolved", {
      message: "approval registered",
    });
    const decision = JSON.stringify({ approved: true, approver: "eden" });
    const approved = await client.webhooks.approval({ id: "eden-a" }).post(decision, {
      headers: { "content-type": "application/json", ...signedHeaders(decision) },
    });
    expect(approved.status).toBe(200);
    expect(approved.data).toMatchObject({ outcome: "approved", duplicate: false });
  });

  test("a payment webhook for an order the API never started is a 404", async () => {
    const event = JSON.stringify({
      type: "charge.succeeded",
      data: { charge_id: "ch_eden", order_id: "eden-p", callback: "order:eden-p.2" },
    });
    const res = await client.webhooks.payment.post(event, {
      headers: { "content-type": "application/json", ...signedHeaders(event) },
    });
    expect(res.status).toBe(404);
    expect(res.error?.value).toMatchObject({ error: { code: "not_found" } });
  });
});
