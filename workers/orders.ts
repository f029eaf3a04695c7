import type { Context, Resonate } from "@resonatehq/sdk";
import type { Targets } from "../src/config.ts";
import {
  type ApprovalDecision,
  Db,
  type LineItem,
  type OrderResult,
  type OrderRow,
  Orders,
  type PaymentOutcome,
  type ShipResult,
} from "../src/functions.ts";
import { register, rpc } from "../src/resonate/contract.ts";
import { probe } from "./probes.ts";
import type { CarrierClient, PaymentClient } from "./third-parties.ts";

export interface OrderDeps {
  targets: Targets;
  payment: PaymentClient;
  carrier: CarrierClient;
  /** Durable pause between an approval and the shipment, in which an order can still be stopped (ms). */
  coolingOffMs: number;
}

/** Books the shipment; the idempotency key is the workflow id, so a re-run books the same label. */
async function shipStep(ctx: Context, deps: OrderDeps, orderId: string) {
  probe("order.ship.before", ctx.id);
  const shipment = await deps.carrier.ship(`ship:${ctx.id}`, orderId);
  probe("order.ship.after", ctx.id);
  return shipment;
}

export type { ApprovalDecision, OrderResult, PaymentOutcome, ShipResult };

/** Checks an order's lines; the first problem found, or null. */
export function validateItems(items: LineItem[]): string | null {
  if (items.length === 0) return "an order needs at least one item";
  const seen = new Set<string>();
  for (const item of items) {
    if (seen.has(item.sku)) return `sku ${item.sku} appears twice`;
    seen.add(item.sku);
    if (!Number.isSafeInteger(item.qty) || item.qty < 1)
      return `qty of ${item.sku} must be a positive integer`;
  }
  return null;
}

/**
 * `process_order`: validate, reserve stock (db), create the payment promise,
 * charge with the promise id as the provider's callback token, wait for the
 * provider's webhook, ship, record the order (db).
 *
 * Every external effect is keyed by the workflow id, so a step re-run after
 * a crash repeats the same request and the provider answers with the same
 * charge or shipment.
 */
export function registerOrderFunctions(resonate: Resonate, deps: OrderDeps): void {
  const db = (ctx: Context) => ctx.options({ target: deps.targets.db });

  register(
    resonate,
    Orders.processOrder,
    function* (ctx: Context, orderId: string, items: LineItem[], source = "tok_visa") {
      const problem = yield* ctx.run(() => {
        probe("order.validate", ctx.id);
        return validateItems(items);
      });
      if (problem) return { order_id: orderId, status: "rejected", reason: problem } satisfies OrderResult;

      const reservation = yield* rpc(ctx, Db.reserveStock, [ctx.id, items], db(ctx));
      if (!reservation.ok)
        return { order_id: orderId, status: "rejected", reason: reservation.reason } satisfies OrderResult;

      const paid = yield* ctx.promise<PaymentOutcome>();
      const charge = yield* ctx.run(async () => {
        probe("order.charge.before", ctx.id);
        const receipt = await deps.payment.charge({
          idempotencyKey: `charge:${ctx.id}`,
          orderId,
          amountCents: reservation.total_cents,
          currency: "USD",
          source,
          callback: paid.id,
        });
        probe("order.charge.after", ctx.id);
        return receipt;
      });
      const outcome = yield* paid;

      const row = (status: string, tracking: string | null): OrderRow => ({
        order_id: orderId,
        user_id: null,
        kind: "job",
        status,
        items: reservation.lines,
        total_cents: reservation.total_cents,
        discount_cents: 0,
        charge_id: charge.id,
        tracking,
        created_at: 0,
      });

      if (outcome.type !== "charge.succeeded") {
        yield* rpc(ctx, Db.releaseStock, [ctx.id], db(ctx));
        const createdAt = yield* ctx.date.now();
        yield* rpc(ctx, Db.insertOrder, [{ ...row("payment_failed", null), created_at: createdAt }], db(ctx));
        return {
          order_id: orderId,
          status: "payment_failed",
          total_cents: reservation.total_cents,
          charge_id: charge.id,
          reason: outcome.failure_code ?? "payment failed",
        } satisfies OrderResult;
      }

      const shipment = yield* ctx.run(() => shipStep(ctx, deps, orderId));
      const createdAt = yield* ctx.date.now();
      yield* rpc(
        ctx,
        Db.insertOrder,
        [{ ...row("completed", shipment.tracking_number), created_at: createdAt }],
        db(ctx),
      );
      return {
        order_id: orderId,
        status: "completed",
        total_cents: reservation.total_cents,
        charge_id: charge.id,
        tracking_number: shipment.tracking_number,
      } satisfies OrderResult;
    },
  );

  /**
   * `approve_then_ship`: create the approval promise, record its id with the
   * db group so the approval webhook can find it, wait, then (after the
   * cooling-off pause) ship, or stop.
   */
  register(resonate, Orders.approveThenShip, function* (ctx: Context, orderId: string) {
    const approval = yield* ctx.promise<ApprovalDecision>();
    yield* rpc(ctx, Db.registerCallback, ["approval", orderId, approval.id], db(ctx));
    const decision = yield* approval;
    if (!decision.approved) {
      return {
        order_id: orderId,
        status: "rejected",
        approver: decision.approver,
        reason: decision.reason,
      } satisfies ShipResult;
    }
    if (deps.coolingOffMs > 0) yield* ctx.sleep(deps.coolingOffMs);
    const shipment = yield* ctx.run(() => shipStep(ctx, deps, orderId));
    return {
      order_id: orderId,
      status: "shipped",
      approver: decision.approver,
      tracking_number: shipment.tracking_number,
    } satisfies ShipResult;
  });
}
