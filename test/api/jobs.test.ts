import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { waitFor } from "../../harness/index.ts";
import { startColocatedApi } from "../support/colocated-api.ts";
import { json } from "../support/http.ts";

let api: Awaited<ReturnType<typeof startColocatedApi>>;
beforeAll(async () => {
  api = await startColocatedApi();
});
afterAll(() => api.stop());

const jobOf = async (id: string) => json(await api.request("GET", `/jobs/${id}`));

describe("POST /jobs and GET /jobs/:id", () => {
  test("starts process_order under order:<order_id> and answers 202 with a Location", async () => {
    const res = await api.request("POST", "/jobs", { order_id: "j-1", items: [{ sku: "sku-1", qty: 2 }] });
    expect(res.status).toBe(202);
    expect(res.headers.get("location")).toBe("/jobs/order%3Aj-1");
    expect(await res.json()).toEqual({ job_id: "order:j-1", status: "started" });
  });

  test("runs the order to completion: charge, payment webhook, shipment, order row", async () => {
    await api.request("POST", "/jobs", { order_id: "j-2", items: [{ sku: "sku-3", qty: 1 }] });
    const done = await waitFor(async () => {
      const job = await jobOf("order:j-2");
      return job.body.status === "done" ? job : undefined;
    });
    expect(done.body.result).toMatchObject({
      order_id: "j-2",
      status: "completed",
      total_cents: expect.any(Number),
    });
    expect(api.sandbox.payment.chargesFor("j-2")).toHaveLength(1);
    expect(api.sandbox.carrier.shipmentsFor("j-2")).toHaveLength(1);
  });

  test("a declined card ends in payment_failed, with stock released and no shipment", async () => {
    await api.request("POST", "/jobs", {
      order_id: "j-declined",
      items: [{ sku: "sku-4", qty: 1 }],
      payment_source: "tok_chargeDeclined",
    });
    const done = await waitFor(async () => {
      const job = await jobOf("order:j-declined");
      return job.body.status === "done" ? job : undefined;
    });
    expect(done.body.result).toMatchObject({ status: "payment_failed", reason: "card_declined" });
    expect(api.sandbox.carrier.shipmentsFor("j-declined")).toHaveLength(0);
  });

  test("the same request again is the same job; no second workflow, charge or shipment", async () => {
    const body = { order_id: "j-3", items: [{ sku: "sku-5", qty: 1 }] };
    const first = await json(await api.request("POST", "/jobs", body));
    const again = await json(await api.request("POST", "/jobs", body));
    expect(again).toEqual(first);
    await waitFor(async () => (await jobOf("order:j-3")).body.status === "done");
    await json(await api.request("POST", "/jobs", body));
    expect(api.sandbox.payment.chargesFor("j-3")).toHaveLength(1);
    expect(api.sandbox.carrier.shipmentsFor("j-3")).toHaveLength(1);
  });

  test("the same order_id with a different body is a 409", async () => {
    await api.request("POST", "/jobs", { order_id: "j-4", items: [{ sku: "sku-1", qty: 1 }] });
    const res = await json(
      await api.request("POST", "/jobs", { order_id: "j-4", items: [{ sku: "sku-1", qty: 9 }] }),
    );
    expect(res.status).toBe(409);
    expect(res.body).toEqual({
      error: {
        code: "conflict",
        message: "order j-4 was already submitted, with different contents or by another caller",
      },
    });
  });

  test.each([
    ["no items", { order_id: "v1" }, "items"],
    ["an empty item list", { order_id: "v2", items: [] }, "items"],
    ["a zero quantity", { order_id: "v3", items: [{ sku: "sku-1", qty: 0 }] }, "items[0].qty"],
    ["a fractional quantity", { order_id: "v4", items: [{ sku: "sku-1", qty: 1.5 }] }, "items[0].qty"],
    ["a '.' in the order id", { order_id: "a.b", items: [{ sku: "sku-1", qty: 1 }] }, "order_id"],
    ["a ':' in the order id", { order_id: "a:b", items: [{ sku: "sku-1", qty: 1 }] }, "order_id"],
  ])("rejects %s with 422 naming the field", async (_what, body, field) => {
    const res = await json(await api.request("POST", "/jobs", body));
    expect(res.status).toBe(422);
    expect(res.body.error).toMatchObject({ code: "validation_failed" });
    expect((res.body.error as { details: { field: string }[] }).details.map((d) => d.field)).toContain(field);
  });

  test("rejects malformed JSON with 400", async () => {
    const res = await json(await api.request("POST", "/jobs", "{nope"));
    expect(res).toEqual({
      status: 400,
      body: { error: { code: "malformed_body", message: "the request body could not be parsed as JSON" } },
    });
  });

  test("an unknown or malformed job id is a 404", async () => {
    expect((await jobOf("order:never-submitted")).status).toBe(404);
    expect((await jobOf("order:j-2.1")).status).toBe(404);
    expect((await jobOf("something-else")).status).toBe(404);
  });

  test("reports canceled and failed jobs", async () => {
    await api.request("POST", "/orders/j-cancel/approve-and-ship");
    await api.resonate.promises.cancel("ship:j-cancel");
    expect((await jobOf("ship:j-cancel")).body).toEqual({ job_id: "ship:j-cancel", status: "canceled" });

    await api.request("POST", "/orders/j-fail/approve-and-ship");
    const reason = Buffer.from(JSON.stringify({ __type: "error", message: "operator stopped it" })).toString(
      "base64",
    );
    await api.resonate.promises.reject("ship:j-fail", { data: reason });
    expect((await jobOf("ship:j-fail")).body).toEqual({
      job_id: "ship:j-fail",
      status: "failed",
      reason: "operator stopped it",
    });
  });
});

describe("errors, health and docs", () => {
  test("an unknown route is a 404 in the error shape", async () => {
    expect(await json(await api.request("GET", "/no/such/route"))).toEqual({
      status: 404,
      body: { error: { code: "not_found", message: "no route for GET /no/such/route" } },
    });
  });

  test("healthz and readyz answer 200", async () => {
    expect(await json(await api.request("GET", "/healthz"))).toEqual({ status: 200, body: { status: "ok" } });
    expect(await json(await api.request("GET", "/readyz"))).toEqual({
      status: 200,
      body: { status: "ready" },
    });
  });

  test("serves an OpenAPI document that lists every route, and a docs page", async () => {
    const spec = (await (await api.request("GET", "/docs/json")).json()) as {
      paths: Record<string, unknown>;
    };
    expect(Object.keys(spec.paths).sort()).toEqual(
      [
        "/healthz",
        "/jobs",
        "/jobs/{id}",
        "/orders/{id}/approve-and-ship",
        "/price-quote",
        "/price-quote/{quote_id}",
        "/readyz",
        "/users/{id}/orders",
        "/webhooks/approval/{id}",
        "/webhooks/payment",
      ].sort(),
    );
    const page = await api.request("GET", "/docs");
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toContain("text/html");
  });
});
