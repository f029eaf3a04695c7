import type { Context, Resonate } from "@resonatehq/sdk";
import type { Targets } from "../src/config.ts";
import { discountBps } from "./db.ts";
import { probe } from "./probes.ts";

export interface PricingDeps {
  targets: Targets;
  /** Extra time compute_quote takes (ms), to exercise the deadline. */
  delayMs: number;
}

export interface Quote {
  sku: string;
  qty: number;
  customer_id: string | null;
  unit_price_cents: number;
  discount_bps: number;
  price_cents: number;
  currency: "USD";
}

export class UnknownSku extends Error {
  override name = "UnknownSku";
}

/** Price of `qty` units at `unitCents` after a discount in basis points, rounded half up to the cent. */
export function quotePrice(unitCents: number, qty: number, bps: number): number {
  return Math.round((unitCents * qty * (10_000 - bps)) / 10_000);
}

/** `compute_quote(sku, qty, customer?)`: the list price from the db group, then tiered discounts. */
export function registerPricingFunctions(resonate: Resonate, deps: PricingDeps): void {
  resonate.register("compute_quote", function* (ctx: Context, sku: string, qty: number, customer?: string) {
    const product = yield* ctx.rpc<{ sku: string; unit_price_cents: number } | null>(
      "get_price",
      sku,
      ctx.options({ target: deps.targets.db }),
    );
    if (!product) throw new UnknownSku(`unknown sku ${sku}`);
    if (deps.delayMs > 0) {
      yield* ctx.run(async () => {
        probe("pricing.delay", ctx.id);
        await Bun.sleep(deps.delayMs);
      });
    }
    // The price is a pure function of the durable price lookup, so it needs no step of its own
    // (a step would cost two more round trips to the server on every quote).
    const bps = discountBps(qty, customer);
    probe("pricing.compute", ctx.id);
    return {
      sku,
      qty,
      customer_id: customer ?? null,
      unit_price_cents: product.unit_price_cents,
      discount_bps: bps,
      price_cents: quotePrice(product.unit_price_cents, qty, bps),
      currency: "USD",
    } satisfies Quote;
  });
}
