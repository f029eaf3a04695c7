import type { Deps } from "../deps.ts";
import { conflict } from "../errors.ts";
import { Orders } from "../functions.ts";

export const shipJobId = (orderId: string) => `ship:${orderId}`;

/** Starts `approve_then_ship` for an order; the approval webhook decides what happens next. */
export async function startApproval(deps: Deps, orderId: string): Promise<string> {
  const id = shipJobId(orderId);
  await deps.launcher.startOnce(
    Orders.approveThenShip,
    id,
    [orderId],
    { target: deps.targets.orders, timeout: deps.config.workflowTimeoutMs },
    () => conflict(`job ${id} exists and is not an approval workflow`),
  );
  return id;
}
