/**
 * The order-workers group: `process_order` and `approve_then_ship`, each a
 * module of its own under `workflows/`, registered at every version that
 * may still have jobs pending.
 */
import type { Resonate } from "@resonatehq/sdk";
import { Earlier, Next, Orders } from "../core/functions.ts";
import { register } from "../core/resonate/contract.ts";
import { approveThenShipV1, approveThenShipV2 } from "./workflows/approve-then-ship.ts";
import { ORDER_DEPS, type OrderContext, type OrderDeps } from "./workflows/order-steps.ts";
import { processOrderV1, processOrderV2Next } from "./workflows/process-order.ts";

export type { OrderDeps } from "./workflows/order-steps.ts";
export { validateItems } from "./workflows/order-steps.ts";

/** Registers the order workflows on `resonate`, their dependencies set for them to find through `ctx`. */
export function registerOrderFunctions(resonate: Resonate, deps: OrderDeps): void {
  resonate.setDependency(ORDER_DEPS, { ...deps, resonate } satisfies OrderContext);
  register(resonate, Orders.processOrder, processOrderV1);
  if (deps.build === "next") register(resonate, Next.processOrderV2, processOrderV2Next);
  register(resonate, Earlier.approveThenShipV1, approveThenShipV1);
  register(resonate, Orders.approveThenShip, approveThenShipV2);
}
