import { describe, expect, test } from "bun:test";
import { waitFor } from "../../harness/index.ts";
import { startColocatedApi } from "../support/colocated-api.ts";
import { jsonInit, readReply, withAuthorization } from "../support/http.ts";

describe("POST /price-quote and GET /price-quote/:quote_id", () => {
  test("answers 200 with a deterministic price; the same request gets the same stored quote", async () => {
    await using api = await startColocatedApi();
    const first = await readReply(
      await api.request("POST", "/price-quote", { sku: "sku-7", qty: 12, customer_id: "vip-1" }),
    );
    expect(first.status).toBe(200);
    // sku-7 lists at 13.09; 10+ units take 5% off and vip customers 3% more: 12 × 13.09 × 0.92 = 144.51
    expect(first.body).toMatchObject({
      sku: "sku-7",
      qty: 12,
      unit_price: "13.09",
      discount_bps: 800,
      price: "144.51",
      currency: "USD",
    });
    const again = await readReply(
      await api.request("POST", "/price-quote", { sku: "sku-7", qty: 12, customer_id: "vip-1" }),
    );
    expect(again.body).toEqual(first.body);
    const other = await readReply(
      await api.request("POST", "/price-quote", { sku: "sku-7", qty: 13, customer_id: "vip-1" }),
    );
    expect(other.body.quote_id).not.toBe(first.body.quote_id);
    const read = await readReply(await api.request("GET", `/price-quote/${first.body.quote_id}`));
    expect(read).toMatchObject({ status: 200, body: first.body });
  });

  test("past the deadline it answers 202 with Location and Retry-After, and the quote completes", async () => {
    await using api = await startColocatedApi({ PRICING_DELAY_MS: "800", QUOTE_DEADLINE_MS: "100" });
    const res = await readReply(await api.request("POST", "/price-quote", { sku: "sku-2", qty: 1 }));
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ quote_id: expect.stringMatching(/^quote:[0-9a-f]{32}$/), status: "pending" });
    expect(res.headers.get("location")).toBe(`/price-quote/${encodeURIComponent(String(res.body.quote_id))}`);
    expect(res.headers.get("retry-after")).toBe("1");
    const location = res.headers.get("location") as string;
    expect((await api.request("GET", location)).status).toBe(202);
    const done = await waitFor(async () => {
      const r = await readReply(await api.request("GET", location));
      return r.status === 200 ? r : undefined;
    });
    expect(done.body).toMatchObject({ quote_id: res.body.quote_id, sku: "sku-2", price: expect.any(String) });
  });

  test("Prefer: wait=<seconds> lets a client wait longer, up to the cap", async () => {
    await using api = await startColocatedApi({
      PRICING_DELAY_MS: "500",
      QUOTE_DEADLINE_MS: "100",
      QUOTE_MAX_WAIT_MS: "3000",
    });
    const res = await api.request("POST", "/price-quote", { sku: "sku-3", qty: 2 }, { prefer: "wait=2" });
    expect(res.status).toBe(200);
  });

  test("GET with Prefer: wait=<seconds> answers as soon as a pending quote is ready; past the wait, 202 as before", async () => {
    await using api = await startColocatedApi({ PRICING_DELAY_MS: "600", QUOTE_DEADLINE_MS: "50" });
    const res = await readReply(await api.request("POST", "/price-quote", { sku: "sku-5", qty: 4 }));
    expect(res.status).toBe(202);
    const location = res.headers.get("location") as string;
    const short = await api.request("GET", location, undefined, { prefer: "wait=0.01" });
    expect(short.status).toBe(202);
    expect(short.headers.get("preference-applied")).toBe("wait=0.01");
    const ready = await readReply(await api.request("GET", location, undefined, { prefer: "wait=5" }));
    expect(ready.status).toBe(200);
    expect(ready.headers.get("preference-applied")).toBe("wait=5");
    expect(ready.body).toMatchObject({ quote_id: res.body.quote_id, sku: "sku-5", qty: 4 });
    // Ready, it answers at once, and says nothing of a wait it was not asked for.
    const again = await api.request("GET", location);
    expect(again.status).toBe(200);
    expect(again.headers.get("preference-applied")).toBeNull();
  });

  test("when too many requests already wait, the next gets 503 with Retry-After at once", async () => {
    await using api = await startColocatedApi({
      PRICING_DELAY_MS: "700",
      QUOTE_MAX_WAITING: "1",
      QUOTE_DEADLINE_MS: "2000",
    });
    const waiting = api.request("POST", "/price-quote", { sku: "sku-4", qty: 1 });
    await waitFor(() => api.quoteGate.waiting === 1, { message: "first request waiting" });
    const shed = await readReply(await api.request("POST", "/price-quote", { sku: "sku-5", qty: 1 }));
    expect(shed.status).toBe(503);
    expect(shed.headers.get("retry-after")).toBe("1");
    expect(shed.body.error).toMatchObject({ code: "overloaded" });
    expect((await waiting).status).toBe(200);
    expect(api.quoteGate.waiting).toBe(0);
  });

  test("a client that goes away stops its wait at once: no timer or waiter is left, the quote still completes", async () => {
    await using api = await startColocatedApi({ PRICING_DELAY_MS: "500", QUOTE_DEADLINE_MS: "10000" });
    const client = new AbortController();
    const pending = api.app.handle(
      new Request("http://api.test/price-quote", {
        ...jsonInit("POST", { sku: "sku-11", qty: 1 }, await withAuthorization("/price-quote", {})),
        signal: client.signal,
      }),
    );
    await waitFor(() => api.quoteGate.waiting === 1, { message: "request waiting" });
    client.abort();
    const res = await pending;
    expect(res.status).toBe(202);
    expect(api.quoteGate.waiting).toBe(0);
    const location = res.headers.get("location") as string;
    await waitFor(async () => (await api.request("GET", location)).status === 200, {
      message: "quote completed",
    });
  });

  test("a quote whose workflow timed out answers 504", async () => {
    await using api = await startColocatedApi({
      PRICING_DELAY_MS: "1500",
      QUOTE_TIMEOUT_MS: "300",
      QUOTE_DEADLINE_MS: "100",
    });
    const res = await readReply(await api.request("POST", "/price-quote", { sku: "sku-6", qty: 1 }));
    expect(res.status).toBe(202);
    const timedOut = await waitFor(async () => {
      const r = await readReply(await api.request("GET", String(res.headers.get("location"))));
      return r.status === 504 ? r : undefined;
    });
    expect(timedOut.body.error).toMatchObject({ code: "quote_timed_out" });
  });

  test.each([
    ["an unknown sku", { sku: "sku-nope", qty: 1 }, 422, "unknown_sku"],
    ["a zero quantity", { sku: "sku-1", qty: 0 }, 422, "validation_failed"],
    ["a missing sku", { qty: 1 }, 422, "validation_failed"],
    ["a bad customer id", { sku: "sku-1", qty: 1, customer_id: "a.b" }, 422, "validation_failed"],
  ])("%s is a %i", async (_what, body, status, code) => {
    await using api = await startColocatedApi();
    const res = await readReply(await api.request("POST", "/price-quote", body));
    expect(res.status).toBe(status);
    expect(res.body.error).toMatchObject({ code });
  });

  test("an unknown quote id is a 404", async () => {
    await using api = await startColocatedApi();
    expect((await api.request("GET", "/price-quote/quote:0123456789abcdef0123456789abcdef")).status).toBe(
      404,
    );
    expect((await api.request("GET", "/price-quote/whatever")).status).toBe(404);
  });
});

describe("QuoteCache", () => {
  test("keeps finished quotes for their window and holds at most maxEntries, oldest out first", async () => {
    const { QuoteCache } = await import("../../src/quotes/service.ts");
    const cache = new QuoteCache(2, 1_000);
    const body = (id: string) => ({ quote_id: id }) as unknown as Parameters<typeof cache.set>[1];
    cache.set("a", body("a"), 0);
    cache.set("b", body("b"), 0);
    cache.set("c", body("c"), 0);
    expect(cache.size).toBe(2);
    expect(cache.get("a", 10)).toBeUndefined();
    expect(cache.get("c", 10)).toEqual(body("c"));
    expect(cache.get("c", 1_000)).toBeUndefined();
    expect(cache.size).toBe(1);
  });
});
