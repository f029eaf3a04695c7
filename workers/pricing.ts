/**
 * The pricing group: `compute_quote` (its versions in
 * `workflows/compute-quote.ts`) and the price list it prices from.
 */
import type { Resonate } from "@resonatehq/sdk";
import { Db, Earlier, Pricing, type Quote } from "../core/functions.ts";
import { clientRpc, register } from "../core/resonate/contract.ts";
import { catalogue, discountBps } from "./db.ts";
import {
  computeQuoteV1,
  computeQuoteV2,
  PRICING_DEPS,
  type Prices,
  type PricingDeps,
  quotePrice,
  UnknownSku,
} from "./workflows/compute-quote.ts";

export type { PricingDeps, Prices, Quote };
export { quotePrice, UnknownSku };

/**
 * The price list, kept in a pricing worker's memory and reread from the db
 * group every `refreshMs`. A reread is a durable RPC whose id names its
 * window (`prices:<n>`), so all pricing workers share one read per window.
 * A price is served only from a list at most two windows old; past that,
 * or for a sku the list does not have, `price` says nothing and the quote
 * asks the db group itself.
 */
export class PriceBook implements Prices {
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

/** Registers `compute_quote` at every version that may still have quotes pending, its dependencies set for it to find through `ctx`. */
export function registerPricingFunctions(resonate: Resonate, deps: PricingDeps): void {
  resonate.setDependency(PRICING_DEPS, deps);
  register(resonate, Earlier.computeQuoteV1, computeQuoteV1);
  register(resonate, Pricing.computeQuote, computeQuoteV2);
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
