/**
 * `place_order(userId, orderId, cart)`: a user's checkout. The user's
 * history and each line's price come from the db group, the loyalty
 * discount and the order's time are one recorded step, then the insert.
 */
import type { Context } from "@resonatehq/sdk";
import type { Targets } from "../../core/config.ts";
import {
  type CheckoutResult,
  Db,
  type LineItem,
  type OrderRow,
  type PricedLine,
} from "../../core/functions.ts";
import { rpc } from "../../core/resonate/contract.ts";
import { probe } from "../probes.ts";
import { groupDependencies } from "./dependencies.ts";

export interface BusinessDeps {
  targets: Targets;
}

/** The name the business group's dependencies are set under (`resonate.setDependency`). */
export const BUSINESS_DEPS = "business";

/** Loyalty rule: a customer with this many completed orders gets `LOYALTY_BPS` off. */
export const LOYALTY_ORDERS = 3;
export const LOYALTY_BPS = 1000;

export function loyaltyDiscount(history: Pick<OrderRow, "status">[], subtotalCents: number): number {
  const completed = history.filter((o) => o.status === "completed").length;
  return completed >= LOYALTY_ORDERS ? Math.round((subtotalCents * LOYALTY_BPS) / 10_000) : 0;
}

const businessDeps = (ctx: Context) => groupDependencies<BusinessDeps>(ctx, BUSINESS_DEPS);

/** Version 1, the current one. */
export function* placeOrderV1(
  ctx: Context,
  userId: string,
  orderId: string,
  cart: LineItem[],
): Generator<unknown, CheckoutResult, unknown> {
  const db = ctx.options({ target: businessDeps(ctx).targets.db });
  const history = yield* rpc(ctx, Db.queryOrders, [userId], db);
  const lines: PricedLine[] = [];
  for (const item of cart) {
    const product = yield* rpc(ctx, Db.getPrice, [item.sku], db);
    if (!product) return { error: "unknown_sku", sku: item.sku };
    lines.push({
      ...item,
      unit_price_cents: product.unit_price_cents,
      line_cents: product.unit_price_cents * item.qty,
    });
  }
  const { subtotal, discount, createdAt } = yield* ctx.run(() => {
    probe("business.price.before", ctx.id);
    const subtotal = lines.reduce((n, l) => n + l.line_cents, 0);
    const priced = { subtotal, discount: loyaltyDiscount(history, subtotal), createdAt: Date.now() };
    probe("business.price.after", ctx.id);
    return priced;
  });
  const order = yield* rpc(
    ctx,
    Db.insertOrder,
    [
      {
        order_id: orderId,
        user_id: userId,
        kind: "checkout",
        status: "completed",
        items: lines,
        total_cents: subtotal - discount,
        discount_cents: discount,
        charge_id: null,
        tracking: null,
        created_at: createdAt,
      } satisfies OrderRow,
    ],
    db,
  );
  return { order };
}
