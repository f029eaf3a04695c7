import type { Context } from "@resonatehq/sdk";
import {
  Db,
  type LineItem,
  type OrderResult,
  type OrderRow,
  type PaymentOutcome,
} from "../../core/functions.ts";
import type { CancelRequest } from "../../core/jobs.ts";
import { rpc } from "../../core/resonate/contract.ts";
import { probe } from "../probes.ts";
import {
  canceled,
  cancelRequested,
  dbOptions,
  orderDeps,
  refundStep,
  sealUnlessCanceled,
  shipStep,
  validateItems,
} from "./order-steps.ts";

/** Version 1, the current one. */
export function* processOrderV1(
  ctx: Context,
  orderId: string,
  items: LineItem[],
  source = "tok_visa",
): Generator<unknown, OrderResult, unknown> {
  return yield* processOrder(ctx, orderId, items, source, 1);
}

/** Version 2, the deploy drill's test build: a screening step after the validation shifts every later step. */
export function* processOrderV2Next(
  ctx: Context,
  orderId: string,
  items: LineItem[],
  source = "tok_visa",
): Generator<unknown, OrderResult, unknown> {
  return yield* processOrder(ctx, orderId, items, source, 2);
}

/** The test build's screening: the order's size, recorded as a step. */
function screenOrder(items: LineItem[]): { lines: number; units: number } {
  return { lines: items.length, units: items.reduce((n, item) => n + item.qty, 0) };
}

/**
 * `process_order`: validate, reserve stock (db), create the payment promise,
 * charge with the promise id as the provider's callback token, wait for the
 * provider's webhook, ship, record the order (db).
 *
 * Every external effect is keyed by the workflow id, so a step re-run after
 * a crash repeats the same request and the provider answers with the same
 * charge, refund or shipment.
 *
 * A cancel (`POST /jobs/:id/cancel`) is a request the workflow looks for at
 * its step boundaries: before it charges, and once the payment webhook has
 * come (it does not stop waiting for it: the charge's outcome decides what
 * to undo). Seen, it releases the stock, refunds a charge the provider took
 * and records the order as canceled. Before shipping, and before recording
 * a failed payment, it seals the request record, so a cancel that comes
 * later is refused as too late.
 *
 * Version 1 is the current one; version 2 is the deploy drill's test build
 * (`Next.processOrderV2`), with a screening step after the validation.
 */
function* processOrder(
  ctx: Context,
  orderId: string,
  items: LineItem[],
  source: string,
  version: 1 | 2,
): Generator<unknown, OrderResult, unknown> {
  const deps = orderDeps(ctx);
  const resonate = deps.resonate;
  const db = dbOptions;
  const problem = yield* ctx.run(() => {
    probe("order.validate", ctx.id);
    return validateItems(items);
  });
  if (problem) return { order_id: orderId, status: "rejected", reason: problem } satisfies OrderResult;
  // Version 2 only: a step more before the stock is reserved.
  if (version >= 2) yield* ctx.run(() => screenOrder(items));

  const reservation = yield* rpc(ctx, Db.reserveStock, [ctx.id, items], db(ctx));
  if (!reservation.ok)
    return { order_id: orderId, status: "rejected", reason: reservation.reason } satisfies OrderResult;

  const row = (status: string, chargeId: string | null, tracking: string | null): OrderRow => ({
    order_id: orderId,
    user_id: null,
    kind: "job",
    status,
    items: reservation.lines,
    total_cents: reservation.total_cents,
    discount_cents: 0,
    charge_id: chargeId,
    tracking,
    created_at: 0,
  });

  /**
   * Undoes what was done so far and records the order canceled: the stock
   * first (so a refund the provider keeps refusing holds no stock), then a
   * refund only of a charge the provider took.
   */
  const undo = function* (request: CancelRequest, chargeId: string | null, charged: boolean) {
    yield* rpc(ctx, Db.releaseStock, [ctx.id], db(ctx));
    const refund = chargeId && charged ? yield* ctx.run(() => refundStep(ctx, deps, chargeId)) : null;
    const createdAt = yield* ctx.date.now();
    yield* rpc(ctx, Db.insertOrder, [{ ...row("canceled", chargeId, null), created_at: createdAt }], db(ctx));
    const released = reservation.lines.map(({ sku, qty }) => ({ sku, qty }));
    return {
      ...canceled(orderId, request, { released_stock: released, refund }),
      total_cents: reservation.total_cents,
      charge_id: chargeId,
    } satisfies OrderResult;
  };

  const early = yield* cancelRequested(ctx, resonate);
  if (early) return yield* undo(early, null, false);

  // Created only now: a workflow ends only once every promise it created has settled.
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
  const succeeded = outcome.type === "charge.succeeded";

  if (!succeeded) {
    // Sealed, so a cancel asked from now on is refused (409) instead of answered 202 and then overtaken.
    const late = yield* sealUnlessCanceled(ctx, resonate, "finishing");
    if (late) return yield* undo(late, charge.id, false);
    yield* rpc(ctx, Db.releaseStock, [ctx.id], db(ctx));
    const createdAt = yield* ctx.date.now();
    yield* rpc(
      ctx,
      Db.insertOrder,
      [{ ...row("payment_failed", charge.id, null), created_at: createdAt }],
      db(ctx),
    );
    return {
      order_id: orderId,
      status: "payment_failed",
      total_cents: reservation.total_cents,
      charge_id: charge.id,
      reason: outcome.failure_code ?? "payment failed",
    } satisfies OrderResult;
  }

  const late = yield* sealUnlessCanceled(ctx, resonate, "shipping");
  if (late) return yield* undo(late, charge.id, true);

  const shipment = yield* ctx.run(() => shipStep(ctx, deps, orderId));
  const createdAt = yield* ctx.date.now();
  yield* rpc(
    ctx,
    Db.insertOrder,
    [{ ...row("completed", charge.id, shipment.tracking_number), created_at: createdAt }],
    db(ctx),
  );
  return {
    order_id: orderId,
    status: "completed",
    total_cents: reservation.total_cents,
    charge_id: charge.id,
    tracking_number: shipment.tracking_number,
  } satisfies OrderResult;
}
