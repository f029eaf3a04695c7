/**
 * `compute_quote`: the list price, then tiered discounts. The price comes
 * from the pricing worker's price list, else from the db group by RPC.
 *
 * Which of the two a run takes depends on the worker's list, not on
 * anything recorded: a quote run again on another worker (its first one
 * died) may take the other way. That is safe only because the lookup is the
 * last step and nothing after it suspends: a run prices from one lookup,
 * never a mix, and an rpc a first run left behind is read-only and unused.
 * Keep it the last step.
 */
import type { Context } from "@resonatehq/sdk";
import type { Targets } from "../../core/config.ts";
import { Db, type Quote } from "../../core/functions.ts";
import { rpc } from "../../core/resonate/contract.ts";
import { discountBps } from "../db.ts";
import { probe } from "../probes.ts";
import { groupDependencies } from "./dependencies.ts";

/** Where a pricing worker finds list prices (`PriceBook` in a worker). */
export interface Prices {
  /** The list price of `sku` in cents, or undefined when the list cannot say. */
  price(sku: string): number | undefined;
}

export interface PricingDeps {
  targets: Targets;
  /** Version 1 only: the delay step this worker took (PRICING_DELAY_MS), which decided its steps. */
  delayMs: number;
  prices: Prices;
}

/** The name the pricing workers' dependencies are set under (`resonate.setDependency`). */
export const PRICING_DEPS = "pricing-workers";

export class UnknownSku extends Error {
  override name = "UnknownSku";
}

/** Price of `qty` units at `unitCents` after a discount in basis points, rounded half up to the cent. */
export function quotePrice(unitCents: number, qty: number, bps: number): number {
  return Math.round((unitCents * qty * (10_000 - bps)) / 10_000);
}

const pricingDeps = (ctx: Context) => groupDependencies<PricingDeps>(ctx, PRICING_DEPS);

/** Version 2, the current one: the delay is the quote's own argument (0: no delay step), so every worker takes the same steps. */
export function* computeQuoteV2(
  ctx: Context,
  sku: string,
  qty: number,
  customer: string | null,
  delayMs: number,
): Generator<unknown, Quote, unknown> {
  if (delayMs > 0) yield* ctx.run(pricingDelay, ctx.id, delayMs);
  return yield* priced(ctx, sku, qty, customer ?? undefined);
}

/** Version 1: took the delay step when its worker had PRICING_DELAY_MS set. Kept for the quotes started with it. */
export function* computeQuoteV1(
  ctx: Context,
  sku: string,
  qty: number,
  customer?: string,
): Generator<unknown, Quote, unknown> {
  const delayMs = pricingDeps(ctx).delayMs;
  if (delayMs > 0) yield* ctx.run(async (step: Context) => pricingDelay(step, ctx.id, delayMs));
  return yield* priced(ctx, sku, qty, customer);
}

/** A pause of `delayMs` in quote `quoteId`, to see the quote route's 202 and its deadline. */
async function pricingDelay(_step: Context, quoteId: string, delayMs: number): Promise<void> {
  probe("pricing.delay", quoteId);
  await new Promise((resolve) => setTimeout(resolve, delayMs));
}

/** The lookup (the last step), then the price: a pure function of the lookup, so it needs no step of its own. */
function* priced(
  ctx: Context,
  sku: string,
  qty: number,
  customer: string | undefined,
): Generator<unknown, Quote, unknown> {
  const deps = pricingDeps(ctx);
  let unitCents = deps.prices.price(sku);
  if (unitCents === undefined) {
    const product = yield* rpc(ctx, Db.getPrice, [sku], ctx.options({ target: deps.targets.db }));
    if (!product) throw new UnknownSku(`unknown sku ${sku}`);
    unitCents = product.unit_price_cents;
  }
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
  };
}
