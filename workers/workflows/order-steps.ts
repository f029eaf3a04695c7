/**
 * What the order workflows share: their dependencies (found through
 * `ctx.getDependency`, so a workflow body reads nothing else), the steps
 * that reach the payment provider and the carrier, and the cancel record's
 * checks. Every external effect is keyed by the workflow id, so a step run
 * again after a crash repeats the same request and gets the same answer.
 */
import type { Context, Resonate } from "@resonatehq/sdk";
import type { Targets, WorkflowBuild } from "../../core/config.ts";
import type { LineItem, Refund, Undone } from "../../core/functions.ts";
import {
  type CancelRecord,
  type CancelRequest,
  readCancelRecord,
  type SealedStage,
  writeCancelRecord,
} from "../../core/jobs.ts";
import { probe } from "../probes.ts";
import type { CarrierClient, PaymentClient } from "../third-parties.ts";
import { groupDependencies } from "./dependencies.ts";

export interface OrderDeps {
  targets: Targets;
  payment: PaymentClient;
  carrier: CarrierClient;
  /** Durable pause between an approval and the shipment, in which an order can still be stopped (ms). */
  coolingOffMs: number;
  /** `next`: also register the deploy drill's test build (`Next.processOrderV2`). */
  build?: WorkflowBuild;
}

/** The name the order workers' dependencies are set under (`resonate.setDependency`). */
export const ORDER_DEPS = "order-workers";

/** What an order workflow reaches the world through: its dependencies and the client that runs it. */
export type OrderContext = OrderDeps & { resonate: Resonate };

/** The order workers' dependencies, as `registerOrderFunctions` set them. */
export const orderDeps = (ctx: Context) => groupDependencies<OrderContext>(ctx, ORDER_DEPS);

/** Options of an rpc to the db group. */
export const dbOptions = (ctx: Context) => ctx.options({ target: orderDeps(ctx).targets.db });

/** Books the shipment; the idempotency key is the workflow id, so a re-run books the same label. */
export async function shipStep(ctx: Context, deps: OrderDeps, orderId: string) {
  probe("order.ship.before", ctx.id);
  const shipment = await deps.carrier.ship(`ship:${ctx.id}`, orderId);
  probe("order.ship.after", ctx.id);
  return shipment;
}

/** Refunds the charge in full; the idempotency key is the workflow id, so a re-run gets the same refund back. */
export async function refundStep(ctx: Context, deps: OrderDeps, chargeId: string): Promise<Refund> {
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
export function cancelRequested(ctx: Context, resonate: Resonate) {
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
export function sealUnlessCanceled(ctx: Context, resonate: Resonate, stage: SealedStage) {
  return ctx.run(async (): Promise<CancelRequest | null> => {
    probe("order.cancel.before", ctx.id);
    const sealed: CancelRecord = { canceled: false, sealed: stage, sealed_at: Date.now() };
    const record = await writeCancelRecord(resonate.promises, ctx.id, sealed, ctx.info.timeout);
    probe("order.cancel.after", ctx.id);
    return record.canceled ? record : null;
  });
}

/** The fields every canceled result has. */
export const canceled = (orderId: string, request: CancelRequest, undone: Undone) => ({
  order_id: orderId,
  status: "canceled" as const,
  ...(request.reason === undefined ? {} : { reason: request.reason }),
  requested_at: request.requested_at,
  undone,
});

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
