import { t } from "elysia";
import { LineItem, Slug } from "../schemas.ts";

export const Order = t.Object({
  order_id: t.String(),
  user_id: t.Union([t.String(), t.Null()]),
  kind: t.String(),
  status: t.String(),
  items: t.Array(
    t.Object({ sku: t.String(), qty: t.Integer(), unit_price_cents: t.Integer(), line_cents: t.Integer() }),
  ),
  total_cents: t.Integer(),
  discount_cents: t.Integer(),
  charge_id: t.Union([t.String(), t.Null()]),
  tracking: t.Union([t.String(), t.Null()]),
  created_at: t.Number(),
});
export type Order = typeof Order.static;

export const UserModels = {
  params: t.Object({ id: Slug }),
  checkout: t.Object({ cart: t.Array(LineItem, { minItems: 1, maxItems: 100 }) }),
  checkoutHeaders: t.Object({ "idempotency-key": t.Optional(t.String()) }),
  order: Order,
  pending: t.Object({ job_id: t.String(), status: t.Literal("running") }),
  orders: t.Object({ user_id: t.String(), orders: t.Array(Order) }),
} as const;
