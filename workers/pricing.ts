import { setTimeout as sleep } from "node:timers/promises";
import type { Context, Resonate } from "@resonatehq/sdk";
import type { Targets } from "../src/config.ts";
import { Db, Pricing, type Quote } from "../src/functions.ts";
import { clientRpc, register, rpc } from "../src/resonate/contract.ts";
import { catalogue, discountBps } from "./db.ts";
import { probe } from "./probes.ts";

export interface PricingDeps {
  targets: Targets;
  /** Extra time compute_quote takes (ms), to exercise the deadline. */
  delayMs: number;
  /** List prices kept in this process, so a quote needs no round trip to the db group. */
  prices: PriceBook;
}

export type { Quote };

export class UnknownSku extends Error {
  override name = "UnknownSku";
}

/** Price of `qty` units at `unitCents` after a discount in basis points, rounded half up to the cent. */
export function quotePrice(unitCents: number, qty: number, bps: number): number {
  return Math.round((unitCents * qty * (10_000 - bps)) / 10_000);
}

/**
 * The price list, kept in a pricing worker's memory and reread from the db
 * group every `refreshMs`. A reread is a durable RPC whose id names its
 * window (`prices:<n>`), so all pricing workers share one read per window.
 * A price is served only from a list at most two windows old; past that,
 * or for a sku the list does not have, `price` says nothing and the quote
 * asks the db group itself.
 */
export class PriceBook {
  #prices: ReadonlyMap<string, number> = new Map();
  #window = Number.NEGATIVE_INFINITY;
  #timer: ReturnType<typeof setInterval> | undefined;
  #reading: Promise<void> | undefined;
  #stopped = false;

  constructor(
    readonly resonate: Resonate,
    readonly target: string,
    readonly refreshMs: number,
    readonly now: () => number = Date.now,
  ) {}

  /** Reads the list now and then every `refreshMs`. */
  start(): void {
    void this.refresh();
    this.#timer ??= setInterval(() => void this.refresh(), this.refreshMs);
    this.#timer.unref();
  }

  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
  }

  /** Reads the list of the current window (once per process at a time); a failed read keeps the old list. */
  refresh(): Promise<void> {
    const window = Math.floor(this.now() / this.refreshMs);
    this.#reading ??= clientRpc(
      this.resonate,
      `prices:${window}`,
      Db.listPrices,
      [],
      this.resonate.options({ target: this.target, timeout: this.refreshMs }),
    )
      .then((rows) => {
        if (window < this.#window) return;
        this.#prices = new Map(rows.map((row) => [row.sku, row.unit_price_cents]));
        this.#window = window;
      })
      .catch((error: unknown) => {
        if (!this.#stopped) console.error(`price list: reread failed, keeping the old one: ${String(error)}`);
      })
      .finally(() => {
        this.#reading = undefined;
      });
    return this.#reading;
  }

  /** How many skus the list has (0 before the first read). */
  get size(): number {
    return this.#prices.size;
  }

  /** The list price of `sku` in cents, or undefined when the list is too old or does not have it. */
  price(sku: string): number | undefined {
    if (Math.floor(this.now() / this.refreshMs) - this.#window > 2) return undefined;
    return this.#prices.get(sku);
  }
}

/**
 * `compute_quote(sku, qty, customer?)`: the list price, then tiered
 * discounts. The price comes from the worker's price list, else from the
 * db group by RPC. Nothing after that lookup suspends, so a quote that is
 * run again (its worker died) prices from one lookup, never a mix.
 */
export function registerPricingFunctions(resonate: Resonate, deps: PricingDeps): void {
  register(
    resonate,
    Pricing.computeQuote,
    function* (ctx: Context, sku: string, qty: number, customer?: string) {
      if (deps.delayMs > 0) {
        yield* ctx.run(async () => {
          probe("pricing.delay", ctx.id);
          await sleep(deps.delayMs);
        });
      }
      let unitCents = deps.prices.price(sku);
      if (unitCents === undefined) {
        const product = yield* rpc(ctx, Db.getPrice, [sku], ctx.options({ target: deps.targets.db }));
        if (!product) throw new UnknownSku(`unknown sku ${sku}`);
        unitCents = product.unit_price_cents;
      }
      // The price is a pure function of the lookup, so it needs no step of its own
      // (a step would cost two more round trips to the server on every quote).
      const bps = discountBps(qty, customer);
      probe("pricing.compute", ctx.id);
      return {
        sku,
        qty,
        customer_id: customer ?? null,
        unit_price_cents: unitCents,
        discount_bps: bps,
        price_cents: quotePrice(unitCents, qty, bps),
        currency: "USD",
      } satisfies Quote;
    },
  );
}

/**
 * The same quote from the seeded catalogue, in this process, with no
 * durability and no database: the baseline the load tool measures the
 * durable route against (`POST /bench/price-quote`). Undefined for an
 * unknown sku.
 */
export function baselineQuote(): (sku: string, qty: number, customer?: string) => Quote | undefined {
  const prices = new Map(catalogue().map((p) => [p.sku, p.unit_price_cents]));
  return (sku, qty, customer) => {
    const unit = prices.get(sku);
    if (unit === undefined) return undefined;
    const bps = discountBps(qty, customer);
    return {
      sku,
      qty,
      customer_id: customer ?? null,
      unit_price_cents: unit,
      discount_bps: bps,
      price_cents: quotePrice(unit, qty, bps),
      currency: "USD",
    };
  };
}
