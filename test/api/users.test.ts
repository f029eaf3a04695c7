import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startColocatedApi } from "../support/colocated-api.ts";
import { json } from "../support/http.ts";

let api: Awaited<ReturnType<typeof startColocatedApi>>;
beforeAll(async () => {
  api = await startColocatedApi();
});
afterAll(() => api.stop());

const checkout = (user: string, cart: object[], key?: string) =>
  api.request("POST", `/users/${user}/orders`, { cart }, key ? { "idempotency-key": key } : {});

describe("POST /users/:id/orders and GET /users/:id/orders", () => {
  test("places an order through business and db and answers 201", async () => {
    const res = await json(await checkout("u-1", [{ sku: "sku-1", qty: 2 }], "k-1"));
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      order_id: "u-1:k-1",
      user_id: "u-1",
      status: "completed",
      discount_cents: 0,
    });
  });

  test("the same Idempotency-Key again gets the same response and no second row", async () => {
    const first = await json(await checkout("u-2", [{ sku: "sku-2", qty: 1 }], "k-1"));
    const again = await json(await checkout("u-2", [{ sku: "sku-2", qty: 1 }], "k-1"));
    expect(again).toEqual(first);
    const list = await json(await api.request("GET", "/users/u-2/orders"));
    expect((list.body.orders as unknown[]).length).toBe(1);
  });

  test("the same key with a different body is a 422", async () => {
    await checkout("u-3", [{ sku: "sku-2", qty: 1 }], "k-1");
    const res = await json(await checkout("u-3", [{ sku: "sku-2", qty: 5 }], "k-1"));
    expect(res.status).toBe(422);
    expect(res.body.error).toMatchObject({ code: "idempotency_key_reused" });
  });

  test("a missing Idempotency-Key is a 400", async () => {
    const res = await json(await checkout("u-4", [{ sku: "sku-2", qty: 1 }]));
    expect(res).toEqual({
      status: 400,
      body: { error: { code: "missing_idempotency_key", message: "the Idempotency-Key header is required" } },
    });
  });

  test("an unknown sku is a 422 and an empty cart a validation error", async () => {
    expect((await json(await checkout("u-5", [{ sku: "nope", qty: 1 }], "k-1"))).body.error).toMatchObject({
      code: "unknown_sku",
    });
    expect((await json(await checkout("u-5", [], "k-2"))).status).toBe(422);
  });

  test("after three completed orders the loyalty discount applies", async () => {
    for (const key of ["a", "b", "c"]) await checkout("u-loyal", [{ sku: "sku-10", qty: 1 }], key);
    const fourth = await json(await checkout("u-loyal", [{ sku: "sku-10", qty: 1 }], "d"));
    expect(fourth.status).toBe(201);
    expect(fourth.body.discount_cents).toBeGreaterThan(0);
    const list = await json(await api.request("GET", "/users/u-loyal/orders"));
    expect((list.body.orders as { order_id: string }[]).map((o) => o.order_id)).toEqual([
      "u-loyal:a",
      "u-loyal:b",
      "u-loyal:c",
      "u-loyal:d",
    ]);
  });

  test("a user with no orders gets an empty list", async () => {
    expect(await json(await api.request("GET", "/users/nobody/orders"))).toEqual({
      status: 200,
      body: { user_id: "nobody", orders: [] },
    });
  });
});
