import type { Context, Resonate } from "@resonatehq/sdk";
import type { Targets } from "../src/config.ts";
import { Business, Db, type LineItem, type OrderRow, type PricedLine } from "../src/functions.ts";
import { register, rpc } from "../src/resonate/contract.ts";
import { probe } from "./probes.ts";

export interface BusinessDeps {
  targets: Targets;
}

/** Loyalty rule: a customer with this many completed orders gets `LOYALTY_BPS` off. */
export const LOYALTY_ORDERS = 3;
export const LOYALTY_BPS = 1000;

export function loyaltyDiscount(history: Pick<OrderRow, "status">[], subtotalCents: number): number {
  const completed = history.filter((o) => o.status === "completed").length;
  return completed >= LOYALTY_ORDERS ? Math.round((subtotalCents * LOYALTY_BPS) / 10_000) : 0;
}

/** `place_order(userId, orderId, cart)`: history and prices from the db group, a loyalty discount, the insert. */
export function registerBusinessFunctions(resonate: Resonate, deps: BusinessDeps): void {
  register(
    resonate,
    Business.placeOrder,
    function* (ctx: Context, userId: string, orderId: string, cart: LineItem[]) {
      const db = ctx.options({ target: deps.targets.db });
      const history = yield* rpc(ctx, Db.queryOrders, [userId], db);
      const lines: PricedLine[] = [];
      for (const item of cart) {
        const product = yield* rpc(ctx, Db.getPrice, [item.sku], db);
        if (!product) return { error: "unknown_sku" as const, sku: item.sku };
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
    },
  );
}
