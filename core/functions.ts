/**
 * Every durable function of the service, declared once: its name, its
 * version (`fn(name)` is version 1; a change to a workflow's steps is a new
 * declaration at the next version, registered beside the old one while
 * promises of it may be pending), its argument tuple and its result. The
 * API starts functions through these
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

/**
 * What the approval webhook settles the approval promise with; a cancel
 * settles it with `approved: false, canceled: true` (and the request).
 */
export interface ApprovalDecision {
  approved: boolean;
  approver?: string;
  reason?: string;
  canceled?: boolean;
  requested_at?: number;
}

/** A refund the payment provider made of a whole charge. */
export interface Refund {
  id: string;
  charge_id: string;
  amount_cents: number;
  status: string;
}

/** What a canceled workflow undid before it ended. */
export interface Undone {
  /** The lines whose reserved stock went back (none when nothing was reserved). */
  released_stock: LineItem[];
  /** The refund of a charge the provider had taken, or null when it had taken none. */
  refund: Refund | null;
}

/** How a workflow that stopped because it was asked to ends (`GET /jobs/:id` says `canceled`). */
export interface Canceled {
  order_id: string;
  status: "canceled";
  reason?: string;
  requested_at: number;
  undone: Undone;
}

export type OrderResult =
  | { order_id: string; status: "completed"; total_cents: number; charge_id: string; tracking_number: string }
  | { order_id: string; status: "payment_failed"; total_cents: number; charge_id: string; reason: string }
  | { order_id: string; status: "rejected"; reason: string }
  | (Canceled & { total_cents: number; charge_id: string | null });

export type ShipResult =
  | { order_id: string; status: "shipped"; approver?: string; tracking_number: string }
  | { order_id: string; status: "rejected"; approver?: string; reason?: string }
  | (Canceled & { approver?: string });

export type CheckoutResult = { order: OrderRow } | { error: "unknown_sku"; sku: string };

/** The pricing group. */
export const Pricing = {
  /**
   * A quote for `qty` of `sku`, with the customer's discount (null: none).
   * Version 2 takes its test delay (`PRICING_DELAY_MS`, 0: no delay step) as
   * an argument the API passes, so no worker's setting changes its steps.
   */
  computeQuote: fn<[sku: string, qty: number, customer: string | null, delayMs: number], Quote>(
    "compute_quote",
    2,
  ),
} as const;

/** The order-workers group. */
export const Orders = {
  /** Reserve, charge (waits for the payment webhook), ship, record. */
  processOrder: fn<[orderId: string, items: LineItem[], source?: string], OrderResult>("process_order"),
  /**
   * Waits for the approval webhook, then ships or stops. Version 2 always
   * takes its cooling-off pause (of SHIP_COOLING_OFF_MS; 0 ms ends at once),
   * so no setting changes its steps.
   */
  approveThenShip: fn<[orderId: string], ShipResult>("approve_then_ship", 2),
} as const;

/**
 * The test build the deploy drill rolls to and back (`WORKFLOW_BUILD=next`):
 * `process_order` at version 2, with a screening step before the stock is
 * reserved, so every later step sits one place further on. Never deployed.
 */
export const Next = {
  processOrderV2: fn<[orderId: string, items: LineItem[], source?: string], OrderResult>("process_order", 2),
} as const;

/**
 * Versions new work no longer starts at, registered beside the current ones
 * while promises of them may still be pending.
 */
export const Earlier = {
  /** Took its delay step when the pricing worker had PRICING_DELAY_MS set: a worker without it resumed a quote begun with it one step off. */
  computeQuoteV1: fn<[sku: string, qty: number, customer?: string], Quote>("compute_quote", 1),
  /** Took the cooling-off pause only when SHIP_COOLING_OFF_MS > 0: two workers set apart numbered its later steps apart. */
  approveThenShipV1: fn<[orderId: string], ShipResult>("approve_then_ship", 1),
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
