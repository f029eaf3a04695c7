import { Orders } from "../../core/functions.ts";
import { orderJobId, shipJobId } from "../../core/jobs.ts";
import { findPromise } from "../../core/resonate/durable.ts";
import type { Caller } from "../auth/service.ts";
import type { Deps } from "../deps.ts";
import { conflict, notFound } from "../errors.ts";
import { startJob, visibleTo } from "../jobs/service.ts";

/** Whether an order job `order:<orderId>` exists that `caller` may not see (another caller's). */
async function othersOrder(deps: Deps, orderId: string, caller: Caller): Promise<boolean> {
  const order = await findPromise(deps.resonate.promises, orderJobId(orderId));
  return order !== undefined && !visibleTo(order, caller);
}

/**
 * Starts `approve_then_ship` for an order; the approval webhook decides what
 * happens next. An order submitted by another caller (`POST /jobs`) is not
 * this caller's to hold: 404, as for an order that is not there.
 */
export async function startApproval(deps: Deps, orderId: string, caller: Caller): Promise<string> {
  const id = shipJobId(orderId);
  if (await othersOrder(deps, orderId, caller)) throw notFound(`order ${orderId}`);
  await startJob(
    deps,
    Orders.approveThenShip,
    id,
    [orderId],
    { target: deps.targets.orders, kind: "approval", caller },
    () => conflict(`job ${id} exists: it is not an approval workflow, or another caller started it`),
  );
  return id;
}
