import { afterEach, describe, expect, test } from "bun:test";
import { Resonate } from "@resonatehq/sdk";
import { Db, Pricing, type Quote } from "../../core/functions.ts";
import { register } from "../../core/resonate/contract.ts";
import { PriceBook, registerPricingFunctions } from "../../workers/pricing.ts";

const WINDOW_MS = 1_000;
const TARGETS = { orders: "t", pricing: "t", db: "t", business: "t" };

/** An in-process Resonate with a db group that serves a price list it can be told to change. */
function setup() {
  const resonate = new Resonate({ group: "t", pid: `price-book-${crypto.randomUUID()}` });
  const db = {
    prices: new Map([
      ["sku-1", 1_000],
      ["sku-2", 250],
    ]),
    listReads: 0,
    getPriceReads: 0,
    failing: false,
  };
  register(resonate, Db.listPrices, async () => {
    db.listReads++;
    if (db.failing) throw new Error("database unavailable");
    return [...db.prices].map(([sku, unit_price_cents]) => ({ sku, unit_price_cents }));
  });
  register(resonate, Db.getPrice, async (_ctx, sku) => {
    db.getPriceReads++;
    const unit = db.prices.get(sku);
    return unit === undefined ? null : { sku, unit_price_cents: unit };
  });
  let now = 10 * WINDOW_MS;
  const clock = {
    now: () => now,
    advance: (ms: number) => {
      now += ms;
    },
  };
  return { resonate, db, clock };
}

let stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const stop of stops) await stop();
  stops = [];
});

function started() {
  const s = setup();
  stops.push(() => s.resonate.stop());
  return s;
}

describe("PriceBook: the price list a pricing worker keeps", () => {
  test("says nothing before its first read, then serves the list; a sku it lacks is not guessed", async () => {
    const { resonate, clock } = started();
    const book = new PriceBook(resonate, "t", WINDOW_MS, clock.now);
    expect(book.price("sku-1")).toBeUndefined();
    await book.refresh();
    expect(book.size).toBe(2);
    expect(book.price("sku-1")).toBe(1_000);
    expect(book.price("sku-9")).toBeUndefined();
  });

  test("workers in the same window share one durable read; the next window reads again", async () => {
    const { resonate, db, clock } = started();
    const a = new PriceBook(resonate, "t", WINDOW_MS, clock.now);
    const b = new PriceBook(resonate, "t", WINDOW_MS, clock.now);
    await a.refresh();
    await b.refresh();
    expect(db.listReads).toBe(1);
    expect(b.price("sku-2")).toBe(250);

    db.prices.set("sku-2", 300);
    clock.advance(WINDOW_MS);
    await b.refresh();
    expect(db.listReads).toBe(2);
    expect(b.price("sku-2")).toBe(300);
    expect(a.price("sku-2")).toBe(250);
  });

  test("a failed read keeps the old list, which is served for at most two windows", async () => {
    const { resonate, db, clock } = started();
    const book = new PriceBook(resonate, "t", WINDOW_MS, clock.now);
    await book.refresh();
    db.failing = true;
    clock.advance(WINDOW_MS);
    await book.refresh();
    expect(db.listReads).toBeGreaterThan(1);
    expect(book.price("sku-1")).toBe(1_000);
    clock.advance(WINDOW_MS);
    expect(book.price("sku-1")).toBe(1_000);
    clock.advance(WINDOW_MS);
    expect(book.price("sku-1")).toBeUndefined();
  });
});

describe("compute_quote prices from the list, and asks the db group only when the list cannot answer", () => {
  async function quote(resonate: Resonate, id: string, sku: string, qty: number): Promise<Quote> {
    return resonate.run<Quote>(
      id,
      Pricing.computeQuote.name,
      sku,
      qty,
      null,
      0,
      resonate.options({ version: Pricing.computeQuote.version }),
    );
  }

  test("a sku in the list: no db RPC; a sku missing from it or an old list: one; an unknown sku: an error", async () => {
    const { resonate, db, clock } = started();
    const prices = new PriceBook(resonate, "t", WINDOW_MS, clock.now);
    registerPricingFunctions(resonate, { targets: TARGETS, delayMs: 0, prices });
    await prices.refresh();

    const listed = await quote(resonate, "q:listed", "sku-1", 10);
    expect(listed).toMatchObject({ unit_price_cents: 1_000, discount_bps: 500, price_cents: 9_500 });
    expect(db.getPriceReads).toBe(0);

    db.prices.set("sku-3", 4_000);
    expect(await quote(resonate, "q:new-sku", "sku-3", 1)).toMatchObject({ unit_price_cents: 4_000 });
    expect(db.getPriceReads).toBe(1);

    clock.advance(3 * WINDOW_MS);
    expect(await quote(resonate, "q:old-list", "sku-1", 1)).toMatchObject({ unit_price_cents: 1_000 });
    expect(db.getPriceReads).toBe(2);

    await expect(quote(resonate, "q:unknown", "sku-404", 1)).rejects.toThrow("unknown sku sku-404");
  });
});
