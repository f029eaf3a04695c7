import { Type } from "@sinclair/typebox";
import { t } from "elysia";
import { LineItem, Slug } from "../schemas.ts";

export const Order = t.Object({
  order_id: t.String(),
  user_id: t.Union([t.String(), t.Null()]),
  kind: t.String(),
  status: t.String(),
  items: t.Array(
    t.Object({
      sku: t.String(),
      qty: Type.Integer(),
      unit_price_cents: Type.Integer(),
      line_cents: Type.Integer(),
    }),
  ),
  total_cents: Type.Integer(),
  discount_cents: Type.Integer(),
  charge_id: t.Union([t.String(), t.Null()]),
  tracking: t.Union([t.String(), t.Null()]),
  created_at: Type.Number(),
});
export type Order = typeof Order.static;

export const UserModels = {
  params: t.Object({ id: Slug }),
  checkout: t.Object({ cart: t.Array(LineItem, { minItems: 1, maxItems: 100 }) }),
  order: Order,
  pending: t.Object({ job_id: t.String(), status: t.Literal("running") }),
  orders: t.Object({ user_id: t.String(), orders: t.Array(Order) }),
  /** The checkout's Idempotency-Key, as the document declares it. */
  idempotencyKeyParameter: {
    name: "Idempotency-Key",
    in: "header",
    required: true,
    description:
      "one checkout per key: a retry with the same key and cart joins the first; another cart is a 422",
    schema: { type: "string", pattern: "^[A-Za-z0-9_-]{1,128}$" },
  },
} as const;
