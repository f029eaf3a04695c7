import type { OrderRow } from "../../core/functions.ts";

/** A completed checkout of one sku-1, the row the db tests write and read back. */
export const sampleOrder = (id: string, user: string, status = "completed"): OrderRow => ({
  order_id: id,
  user_id: user,
  kind: "checkout",
  status,
  items: [{ sku: "sku-1", qty: 1, unit_price_cents: 199, line_cents: 199 }],
  total_cents: 199,
  discount_cents: 0,
  charge_id: null,
  tracking: null,
  created_at: 1_700_000_000_000,
});
