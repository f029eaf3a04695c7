import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { waitFor } from "../../harness/index.ts";
import { bearer } from "../support/api-auth.ts";
import { startColocatedApi } from "../support/colocated-api.ts";
import { json } from "../support/http.ts";
import { signedHeaders } from "../support/secrets.ts";

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
    expect((await jobOf("ship:j-cancel")).body).toEqual({
      job_id: "ship:j-cancel",
      status: "canceled",
      started_at: expect.any(String),
    });

    await api.request("POST", "/orders/j-fail/approve-and-ship");
    const reason = Buffer.from(JSON.stringify({ __type: "error", message: "operator stopped it" })).toString(
      "base64",
    );
    await api.resonate.promises.reject("ship:j-fail", { data: reason });
    expect((await jobOf("ship:j-fail")).body).toEqual({
      job_id: "ship:j-fail",
      status: "failed",
      reason: "operator stopped it",
      started_at: expect.any(String),
    });
  });
});

describe("POST /jobs/:id/cancel", () => {
  const cancel = (id: string, body: unknown = {}, headers?: Record<string, string>) =>
    api.request("POST", `/jobs/${id}/cancel`, body, headers);
  const waitForStatus = (id: string, status: string) =>
    waitFor(
      async () => {
        const job = await jobOf(id);
        return job.body.status === status ? job.body : undefined;
      },
      { message: `${id} ${status}` },
    );
  /** The service database's view of an order and a sku: its row's status, and the stock left. */
  const database = (orderId: string, sku: string) => {
    const db = new Database(api.config.databaseUrl.slice("sqlite://".length), { readonly: true });
    try {
      return {
        row: db
          .query<{ status: string }, [string]>("SELECT status FROM orders WHERE order_id = ?")
          .get(orderId)?.status,
        stock: db.query<{ stock: number }, [string]>("SELECT stock FROM products WHERE sku = ?").get(sku)
          ?.stock,
      };
    } finally {
      db.close();
    }
  };
  /** Submits an order whose payment webhook is held back, and waits until the provider has charged it. */
  async function chargedAndWaiting(orderId: string, sku: string, source?: string) {
    api.sandbox.payment.holdWebhooks(orderId);
    const body = { order_id: orderId, items: [{ sku, qty: 3 }], payment_source: source };
    expect((await api.request("POST", "/jobs", body)).status).toBe(202);
    return waitFor(() => api.sandbox.payment.chargesFor(orderId)[0], { message: `${orderId} charged` });
  }

  test("an order waiting for its payment webhook: 202 canceling, then the charge refunded, the stock back, the order canceled", async () => {
    const charge = await chargedAndWaiting("c-1", "sku-61");
    expect(database("c-1", "sku-61").stock).toBe(10_000 - 3);
    const asked = await cancel("order:c-1", { reason: "customer asked" });
    expect(asked.status).toBe(202);
    expect(asked.headers.get("location")).toBe("/jobs/order%3Ac-1");
    expect(await asked.json()).toEqual({ job_id: "order:c-1", status: "canceling" });
    expect((await jobOf("order:c-1")).body).toEqual({
      job_id: "order:c-1",
      status: "canceling",
      started_at: expect.any(String),
    });
    // Asked again while it runs: the same answer (the first reason is kept).
    expect(await json(await cancel("order:c-1", { reason: "asked twice" }))).toEqual({
      status: 202,
      body: { job_id: "order:c-1", status: "canceling" },
    });

    api.sandbox.payment.releaseWebhooks("c-1");
    const job = await waitForStatus("order:c-1", "canceled");
    const [refund] = api.sandbox.payment.refundsFor("c-1");
    expect(job).toEqual({
      job_id: "order:c-1",
      status: "canceled",
      reason: "customer asked",
      started_at: expect.any(String),
      result: {
        order_id: "c-1",
        status: "canceled",
        reason: "customer asked",
        requested_at: expect.any(Number),
        total_cents: charge.amount_cents,
        charge_id: charge.id,
        undone: {
          released_stock: [{ sku: "sku-61", qty: 3 }],
          refund: {
            id: refund?.id,
            charge_id: charge.id,
            amount_cents: charge.amount_cents,
            status: "succeeded",
          },
        },
      },
    });
    expect(api.sandbox.payment.refundsFor("c-1")).toEqual([
      expect.objectContaining({
        charge: charge.id,
        amount_cents: charge.amount_cents,
        idempotency_key: "refund:order:c-1",
      }),
    ]);
    expect(api.sandbox.carrier.shipmentsFor("c-1")).toEqual([]);
    expect(database("c-1", "sku-61")).toEqual({ row: "canceled", stock: 10_000 });
    expect(await json(await cancel("order:c-1"))).toEqual({
      status: 200,
      body: { job_id: "order:c-1", status: "canceled" },
    });
  });

  test("a declined charge is not refunded: the stock goes back and the order is canceled", async () => {
    await chargedAndWaiting("c-2", "sku-62", "tok_chargeDeclined");
    expect((await cancel("order:c-2")).status).toBe(202);
    api.sandbox.payment.releaseWebhooks("c-2");
    const job = await waitForStatus("order:c-2", "canceled");
    expect(job).not.toHaveProperty("reason");
    expect(job.result).toMatchObject({
      status: "canceled",
      undone: { released_stock: [{ sku: "sku-62", qty: 3 }], refund: null },
    });
    expect(api.sandbox.payment.refundsFor("c-2")).toEqual([]);
    expect(database("c-2", "sku-62")).toEqual({ row: "canceled", stock: 10_000 });
  });

  test("an approval waiting for its webhook ends at once; the webhook that comes after is a 409", async () => {
    expect((await api.request("POST", "/orders/c-3/approve-and-ship")).status).toBe(202);
    // Its second step records the approval promise with the db group.
    await waitFor(async () => (await api.resonate.promises.get("ship:c-3.1")).state === "resolved");
    const asked = await json(await cancel("ship:c-3", { reason: "out of stock" }));
    // The workflow may already have ended by the time the route looks again.
    expect([200, 202]).toContain(asked.status);
    const job = await waitForStatus("ship:c-3", "canceled");
    expect(job).toEqual({
      job_id: "ship:c-3",
      status: "canceled",
      reason: "out of stock",
      started_at: expect.any(String),
      result: {
        order_id: "c-3",
        status: "canceled",
        reason: "out of stock",
        requested_at: expect.any(Number),
        undone: { released_stock: [], refund: null },
      },
    });
    const decision = JSON.stringify({ approved: true, approver: "ops" });
    const late = await json(
      await api.request("POST", "/webhooks/approval/c-3", decision, signedHeaders(decision)),
    );
    expect(late).toMatchObject({
      status: 409,
      body: { error: { code: "conflict", message: "promise ship:c-3.0 was settled by a cancel of the job" } },
    });
    expect(api.sandbox.carrier.shipmentsFor("c-3")).toEqual([]);
    expect(await json(await cancel("ship:c-3"))).toEqual({
      status: 200,
      body: { job_id: "ship:c-3", status: "canceled" },
    });
  });

  test("a job that finished otherwise is a 409 naming its state; one canceled by other means is 200", async () => {
    await api.request("POST", "/jobs", { order_id: "c-4", items: [{ sku: "sku-63", qty: 1 }] });
    await waitForStatus("order:c-4", "done");
    expect(await json(await cancel("order:c-4"))).toEqual({
      status: 409,
      body: {
        error: {
          code: "conflict",
          message: "job order:c-4 already finished: done (completed)",
          details: { status: "done", outcome: "completed" },
        },
      },
    });
    expect(api.sandbox.payment.refundsFor("c-4")).toEqual([]);

    await api.request("POST", "/orders/c-5/approve-and-ship");
    await api.resonate.promises.reject("ship:c-5", {
      data: Buffer.from(JSON.stringify({ __type: "error", message: "broke" })).toString("base64"),
    });
    expect(await json(await cancel("ship:c-5"))).toEqual({
      status: 409,
      body: {
        error: {
          code: "conflict",
          message: "job ship:c-5 already finished: failed",
          details: { status: "failed" },
        },
      },
    });

    await api.request("POST", "/orders/c-6/approve-and-ship");
    await api.resonate.promises.cancel("ship:c-6");
    expect(await json(await cancel("ship:c-6"))).toEqual({
      status: 200,
      body: { job_id: "ship:c-6", status: "canceled" },
    });
  });

  test("a checkout is a 409: it cannot be canceled", async () => {
    const placed = await api.request(
      "POST",
      "/users/cuser/orders",
      { cart: [{ sku: "sku-64", qty: 1 }] },
      { "idempotency-key": "k1" },
    );
    expect(placed.status).toBe(201);
    expect(await json(await cancel("checkout:cuser:k1"))).toEqual({
      status: 409,
      body: {
        error: {
          code: "conflict",
          message: "job checkout:cuser:k1 cannot be canceled: only order and approval jobs can",
          details: { status: "done" },
        },
      },
    });
  });

  test("an unknown job, a job of another caller, or an id that is no job is a 404", async () => {
    for (const id of ["order:never-submitted", "cancel:order:c-1", "order:c-1.2"]) {
      expect(await json(await cancel(id))).toEqual({
        status: 404,
        body: { error: { code: "not_found", message: `job ${id} not found` } },
      });
    }
    await chargedAndWaiting("c-7", "sku-65");
    const other = { authorization: await bearer("someone-else") };
    expect((await cancel("order:c-7", {}, other)).status).toBe(404);
    expect((await jobOf("order:c-7")).body.status).toBe("running");
    api.sandbox.payment.releaseWebhooks("c-7");
    await waitForStatus("order:c-7", "done");
  });

  test.each([
    ["malformed JSON", "{nope", {}, 400, "malformed_body"],
    ["a reason over 200 characters", { reason: "x".repeat(201) }, {}, 422, "validation_failed"],
    ["an empty reason", { reason: "" }, {}, 422, "validation_failed"],
    ["a reason that is no string", { reason: 7 }, {}, 422, "validation_failed"],
    ["a body that is not JSON", "reason=x", { "content-type": "text/plain" }, 415, "unsupported_media_type"],
  ] as const)(
    "refuses %s in the error shape, and records nothing",
    async (_what, body, headers, status, code) => {
      await api.request("POST", "/orders/c-bad/approve-and-ship");
      const res = await json(await cancel("ship:c-bad", body, headers));
      expect(res.status).toBe(status);
      expect(res.body.error).toMatchObject({ code, message: expect.any(String) });
      if (status === 422)
        expect((res.body.error as { details: { field: string }[] }).details.map((d) => d.field)).toEqual([
          "reason",
        ]);
      expect((await jobOf("ship:c-bad")).body.status).toBe("running");
    },
  );
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
        "/jobs/{id}/cancel",
        "/jobs/{id}/events",
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
