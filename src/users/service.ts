import { Business, Db } from "../../core/functions.ts";
import { checkoutJobId } from "../../core/jobs.ts";
import type { Caller } from "../auth/service.ts";
import { askDb, type Deps } from "../deps.ts";
import { HttpError, unprocessable } from "../errors.ts";
import { startJob } from "../jobs/service.ts";
import type { Order } from "./model.ts";

/** How long POST /users/:id/orders waits for the order before answering 202 with the job. */
const CHECKOUT_WAIT_MS = 10_000;

/** The Idempotency-Key header of a checkout: required, 1-128 letters, digits, _ or -. */
export function idempotencyKey(header: string | undefined): string {
  if (!header) throw new HttpError(400, "missing_idempotency_key", "the Idempotency-Key header is required");
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(header)) {
    throw new HttpError(
      400,
      "invalid_idempotency_key",
      "Idempotency-Key must be 1-128 letters, digits, _ or -",
    );
  }
  return header;
}

/** `place_order` in the business group, once per Idempotency-Key. */
export async function placeOrder(
  deps: Deps,
  userId: string,
  key: string,
  cart: { sku: string; qty: number }[],
  caller: Caller,
): Promise<{ order: Order } | { pending: string }> {
  const id = checkoutJobId(userId, key);
  const orderId = `${userId}:${key}`;
  const handle = await startJob(
    deps,
    Business.placeOrder,
    id,
    [userId, orderId, cart],
    { target: deps.targets.business, kind: "checkout", caller },
    () =>
      unprocessable(
        "idempotency_key_reused",
        `Idempotency-Key ${key} was already used with a different request`,
      ),
  );
  // Past the wait, or once this process begins to stop, the answer is the job (202), which goes on.
  const gaveUp = AbortSignal.any([AbortSignal.timeout(CHECKOUT_WAIT_MS), deps.draining]);
  let onGiveUp: (() => void) | undefined;
  const result = await Promise.race([
    handle.result(),
    new Promise<undefined>((resolve) => {
      onGiveUp = () => resolve(undefined);
      if (gaveUp.aborted) onGiveUp();
      else gaveUp.addEventListener("abort", onGiveUp, { once: true });
    }),
  ]).finally(() => onGiveUp && gaveUp.removeEventListener("abort", onGiveUp));
  if (result === undefined) return { pending: id };
  if ("error" in result) throw unprocessable("unknown_sku", `unknown sku ${result.sku}`);
  return { order: result.order };
}

export function listOrders(deps: Deps, userId: string): Promise<Order[]> {
  return askDb(deps, Db.queryOrders, `orders:${userId}`, [userId]);
}
