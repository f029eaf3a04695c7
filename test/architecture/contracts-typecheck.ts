/**
 * Checked by `npm run typecheck`, never run: each `@ts-expect-error` below
 * fails the type check if the line under it compiles, so a contract that
 * stopped constraining its callers or implementations is found in CI.
 */
import type { Context, Resonate } from "@resonatehq/sdk";
import { Db, Pricing } from "../../core/functions.ts";
import { register, rpc } from "../../core/resonate/contract.ts";
import type { Launcher } from "../../src/resonate/launcher.ts";

export function wrongImplementations(resonate: Resonate): void {
  // @ts-expect-error compute_quote takes (sku: string, qty: number, customer: string | null, delayMs: number)
  register(resonate, Pricing.computeQuote, async (_ctx: Context, sku: number) => ({ sku }));
  // @ts-expect-error get_price answers a ListPrice or null, not a string price
  register(resonate, Db.getPrice, async (_ctx: Context, sku: string) => ({ sku, unit_price_cents: "1" }));
}

export function* wrongCalls(ctx: Context) {
  const opts = ctx.options({});
  // @ts-expect-error get_price takes a sku string
  yield* rpc(ctx, Db.getPrice, [1], opts);
  // @ts-expect-error reserve_stock takes (reservationId, items)
  yield* rpc(ctx, Db.reserveStock, ["r1"], opts);
  const price = yield* rpc(ctx, Db.getPrice, ["sku-1"], opts);
  // @ts-expect-error the result may be null
  const cents: number = price.unit_price_cents;
  return cents;
}

export async function wrongLaunch(launcher: Launcher) {
  const opts = { target: "poll://any@pricing-workers", timeout: 1000 };
  // @ts-expect-error qty is a number
  await launcher.begin(Pricing.computeQuote, "quote:1", ["sku-1", "2", null, 0], opts);
  // @ts-expect-error the delay is not optional: every quote says which steps it takes
  await launcher.begin(Pricing.computeQuote, "quote:1", ["sku-1", 2], opts);
  const handle = await launcher.begin(Pricing.computeQuote, "quote:1", ["sku-1", 2, null, 0], opts);
  // @ts-expect-error a quote's currency is "USD"
  const currency: "EUR" = (await handle.result()).currency;
  return currency;
}
