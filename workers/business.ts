/**
 * The business group: `place_order` (its versions in
 * `workflows/place-order.ts`).
 */
import type { Resonate } from "@resonatehq/sdk";
import { Business } from "../core/functions.ts";
import { register } from "../core/resonate/contract.ts";
import { BUSINESS_DEPS, type BusinessDeps, placeOrderV1 } from "./workflows/place-order.ts";

export type { BusinessDeps };
export { LOYALTY_BPS, LOYALTY_ORDERS, loyaltyDiscount } from "./workflows/place-order.ts";

/** Registers `place_order` on `resonate`, its dependencies set for it to find through `ctx`. */
export function registerBusinessFunctions(resonate: Resonate, deps: BusinessDeps): void {
  resonate.setDependency(BUSINESS_DEPS, deps);
  register(resonate, Business.placeOrder, placeOrderV1);
}
