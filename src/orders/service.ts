import type { Caller } from "../auth/service.ts";
import type { Deps } from "../deps.ts";
import { conflict } from "../errors.ts";
import { Orders } from "../functions.ts";
import { jobTags } from "../jobs/service.ts";

export const shipJobId = (orderId: string) => `ship:${orderId}`;

/** Starts `approve_then_ship` for an order; the approval webhook decides what happens next. */
export async function startApproval(deps: Deps, orderId: string, caller: Caller): Promise<string> {
  const id = shipJobId(orderId);
  await deps.launcher.startOnce(
    Orders.approveThenShip,
    id,
    [orderId],
    {
      target: deps.targets.orders,
      timeout: deps.config.workflowTimeoutMs,
      tags: jobTags("approval", caller),
    },
    () => conflict(`job ${id} exists: it is not an approval workflow, or another caller started it`),
  );
  return id;
}
