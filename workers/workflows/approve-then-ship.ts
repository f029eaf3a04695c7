import type { Context } from "@resonatehq/sdk";
import { type ApprovalDecision, Db, type ShipResult, type Undone } from "../../core/functions.ts";
import { readCancelRecord } from "../../core/jobs.ts";
import { rpc } from "../../core/resonate/contract.ts";
import { encodeValue } from "../../core/resonate/durable.ts";
import { probe } from "../probes.ts";
import { canceled, dbOptions, orderDeps, sealUnlessCanceled, shipStep } from "./order-steps.ts";

/** Version 1: took the cooling-off pause only when SHIP_COOLING_OFF_MS > 0, so workers set apart numbered its later steps apart. Kept for the jobs started with it. */
export function* approveThenShipV1(ctx: Context, orderId: string): Generator<unknown, ShipResult, unknown> {
  return yield* approveThenShip(ctx, orderId, 1);
}

/** Version 2, the current one: always takes its cooling-off pause (0 ms ends at once), so no setting changes its steps. */
export function* approveThenShipV2(ctx: Context, orderId: string): Generator<unknown, ShipResult, unknown> {
  return yield* approveThenShip(ctx, orderId, 2);
}

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
function* approveThenShip(
  ctx: Context,
  orderId: string,
  version: 1 | 2,
): Generator<unknown, ShipResult, unknown> {
  const deps = orderDeps(ctx);
  const resonate = deps.resonate;
  const db = dbOptions;
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
        throw new Error(`the approval of ${orderId} is recorded as ${registered}, and no cancel was asked`);
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
  if (late) return { ...canceled(orderId, late, nothing), approver: decision.approver } satisfies ShipResult;
  const shipment = yield* ctx.run(() => shipStep(ctx, deps, orderId));
  return {
    order_id: orderId,
    status: "shipped",
    approver: decision.approver,
    tracking_number: shipment.tracking_number,
  } satisfies ShipResult;
}
