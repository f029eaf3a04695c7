/**
 * Every durable function of the service, declared once: its name, its
 * argument tuple and its result. The API starts functions through these
 * (`deps.launcher.begin(Pricing.computeQuote, id, [sku, qty], opts)`),
 * workers register their implementations against them and call each other
 * with `rpc(ctx, Db.getPrice, [sku], opts)`. Grouped by the worker group
 * that runs them.
 */
import { durableFunction as fn } from "./resonate/contract.ts";

export interface LineItem {
  sku: string;
  qty: number;
}

export interface PricedLine extends LineItem {
  unit_price_cents: number;
  line_cents: number;
}

/** An order as the db group stores it. */
export interface OrderRow {
  order_id: string;
  user_id: string | null;
  kind: string;
  status: string;
  items: PricedLine[];
  total_cents: number;
  discount_cents: number;
  charge_id: string | null;
  tracking: string | null;
  created_at: number;
}

export type Reservation =
  | { ok: true; reservation_id: string; lines: PricedLine[]; total_cents: number }
  | { ok: false; reservation_id: string; reason: string };

export interface ListPrice {
  sku: string;
  unit_price_cents: number;
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

/** What the payment provider's webhook settles the payment promise with. */
export interface PaymentOutcome {
  type: "charge.succeeded" | "charge.failed";
  charge_id: string;
  failure_code?: string;
}

/** What the approval webhook settles the approval promise with. */
export interface ApprovalDecision {
  approved: boolean;
  approver?: string;
  reason?: string;
}

export type OrderResult =
  | { order_id: string; status: "completed"; total_cents: number; charge_id: string; tracking_number: string }
  | { order_id: string; status: "payment_failed"; total_cents: number; charge_id: string; reason: string }
  | { order_id: string; status: "rejected"; reason: string };

export type ShipResult =
  | { order_id: string; status: "shipped"; approver?: string; tracking_number: string }
  | { order_id: string; status: "rejected"; approver?: string; reason?: string };

export type CheckoutResult = { order: OrderRow } | { error: "unknown_sku"; sku: string };

/** The pricing group. */
export const Pricing = {
  /** A quote for `qty` of `sku`, with the customer's discount. */
  computeQuote: fn<[sku: string, qty: number, customer?: string], Quote>("compute_quote"),
} as const;

/** The order-workers group. */
export const Orders = {
  /** Reserve, charge (waits for the payment webhook), ship, record. */
  processOrder: fn<[orderId: string, items: LineItem[], source?: string], OrderResult>("process_order"),
  /** Waits for the approval webhook, then ships or stops. */
  approveThenShip: fn<[orderId: string], ShipResult>("approve_then_ship"),
} as const;

/** The business group. */
export const Business = {
  /** A user's checkout: prices from the db group, a loyalty discount, the insert. */
  placeOrder: fn<[userId: string, orderId: string, cart: LineItem[]], CheckoutResult>("place_order"),
} as const;

/** The db group: the only functions that touch the database. */
export const Db = {
  queryOrders: fn<[userId: string], OrderRow[]>("query_orders"),
  insertOrder: fn<[order: OrderRow], OrderRow>("insert_order"),
  reserveStock: fn<[reservationId: string, items: LineItem[]], Reservation>("reserve_stock"),
  releaseStock: fn<[reservationId: string], boolean>("release_stock"),
  getPrice: fn<[sku: string], ListPrice | null>("get_price"),
  listPrices: fn<[], ListPrice[]>("list_prices"),
  registerCallback: fn<[kind: string, key: string, promiseId: string], string>("register_callback"),
  findCallback: fn<[kind: string, key: string], string | null>("find_callback"),
} as const;
