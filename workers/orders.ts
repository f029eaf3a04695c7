import type { Context, Resonate } from "@resonatehq/sdk";
import type { Targets } from "../src/config.ts";
import {
  type ApprovalDecision,
  type CancelRecord,
  type CancelRequest,
  Db,
  Earlier,
  type LineItem,
  type OrderResult,
  type OrderRow,
  Orders,
  type PaymentOutcome,
  type Refund,
  readCancelRecord,
  type SealedStage,
  type ShipResult,
  type Undone,
  writeCancelRecord,
} from "../src/functions.ts";
import { register, rpc } from "../src/resonate/contract.ts";
import { encodeValue } from "../src/resonate/durable.ts";
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

/** Refunds the charge in full; the idempotency key is the workflow id, so a re-run gets the same refund back. */
async function refundStep(ctx: Context, deps: OrderDeps, chargeId: string): Promise<Refund> {
  probe("order.refund.before", ctx.id);
  const receipt = await deps.payment.refund({ idempotencyKey: `refund:${ctx.id}`, chargeId });
  probe("order.refund.after", ctx.id);
  return {
    id: receipt.id,
    charge_id: receipt.charge,
    amount_cents: receipt.amount_cents,
    status: receipt.status,
  };
}

/** The cancel request of the job, if one was made: a step, so a replay sees what the first run saw. */
function cancelRequested(ctx: Context, resonate: Resonate) {
  return ctx.run(async (): Promise<CancelRequest | null> => {
    probe("order.cancel.check", ctx.id);
    const record = await readCancelRecord(resonate.promises, ctx.id);
    return record?.canceled ? record : null;
  });
}

/**
 * The last look before an effect no cancel can undo: seals the job's cancel
 * record unless a cancel request is there first (see `CancelRecord`).
 * Returns that request, or null when the job goes on; from then on the API
 * refuses a cancel as too late.
 */
function sealUnlessCanceled(ctx: Context, resonate: Resonate, stage: SealedStage) {
  return ctx.run(async (): Promise<CancelRequest | null> => {
    probe("order.cancel.before", ctx.id);
    const sealed: CancelRecord = { canceled: false, sealed: stage, sealed_at: Date.now() };
    const record = await writeCancelRecord(resonate.promises, ctx.id, sealed, ctx.info.timeout);
    probe("order.cancel.after", ctx.id);
    return record.canceled ? record : null;
  });
}

/** The fields every canceled result has. */
const canceled = (orderId: string, request: CancelRequest, undone: Undone) => ({
  order_id: orderId,
  status: "canceled" as const,
  ...(request.reason === undefined ? {} : { reason: request.reason }),
  requested_at: request.requested_at,
  undone,
});

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
 * charge, refund or shipment.
 *
 * A cancel (`POST /jobs/:id/cancel`) is a request the workflow looks for at
 * its step boundaries: before it charges, and once the payment webhook has
 * come (it does not stop waiting for it: the charge's outcome decides what
 * to undo). Seen, it releases the stock, refunds a charge the provider took
 * and records the order as canceled. Before shipping, and before recording
 * a failed payment, it seals the request record, so a cancel that comes
 * later is refused as too late.
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
        yield* rpc(
          ctx,
          Db.insertOrder,
          [{ ...row("canceled", chargeId, null), created_at: createdAt }],
          db(ctx),
        );
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
    },
  );

  /**
   * `approve_then_ship`: create the approval promise, record its id with the
   * db group so the approval webhook can find it, wait, then (after the
   * cooling-off pause) ship, or stop.
   *
   * A cancel settles the approval promise itself (`canceled: true`), so a
   * workflow waiting for its webhook ends at once, and a webhook that comes
   * later is refused. A cancel that comes before the workflow recorded its
   * approval promise records its own record in its place: the workflow
   * learns it from `register_callback`, which returns the id recorded first.
   * Approved, the workflow seals its cancel record before shipping, as
   * `process_order` does.
   */
  register(resonate, Earlier.approveThenShipV1, approveThenShip(1));
  register(resonate, Orders.approveThenShip, approveThenShip(2));

  /** `approve_then_ship` at `version`: they differ only in when the cooling-off pause is a step. */
  function approveThenShip(version: 1 | 2) {
    return function* (ctx: Context, orderId: string) {
      const nothing: Undone = { released_stock: [], refund: null };
      const approval = yield* ctx.promise<ApprovalDecision>();
      const registered = yield* rpc(ctx, Db.registerCallback, ["approval", orderId, approval.id], db(ctx));
      if (registered !== approval.id) {
        // Only a cancel records another id for an order's approval, and it makes its request first. No one else
        // can find this approval promise now: settle it with the cancel (a workflow ends only once its promises have).
        yield* ctx.run(async () => {
          probe("order.cancel.check", ctx.id);
          const record = await readCancelRecord(resonate.promises, ctx.id);
          if (!record?.canceled)
            throw new Error(
              `the approval of ${orderId} is recorded as ${registered}, and no cancel was asked`,
            );
          const decision: ApprovalDecision = {
            approved: false,
            canceled: true,
            reason: record.reason,
            requested_at: record.requested_at,
          };
          await resonate.promises.resolve(approval.id, { data: encodeValue(decision) });
        });
      }
      const decision = yield* approval;
      if (decision.canceled) {
        return canceled(
          orderId,
          { canceled: true, reason: decision.reason, requested_at: decision.requested_at ?? 0 },
          nothing,
        ) satisfies ShipResult;
      }
      if (!decision.approved) {
        return {
          order_id: orderId,
          status: "rejected",
          approver: decision.approver,
          reason: decision.reason,
        } satisfies ShipResult;
      }
      // Version 1 paused only when a pause was set, so the steps after it depended on the setting.
      if (version >= 2 || deps.coolingOffMs > 0) yield* ctx.sleep(deps.coolingOffMs);
      const late = yield* sealUnlessCanceled(ctx, resonate, "shipping");
      if (late)
        return { ...canceled(orderId, late, nothing), approver: decision.approver } satisfies ShipResult;
      const shipment = yield* ctx.run(() => shipStep(ctx, deps, orderId));
      return {
        order_id: orderId,
        status: "shipped",
        approver: decision.approver,
        tracking_number: shipment.tracking_number,
      } satisfies ShipResult;
    };
  }
}
