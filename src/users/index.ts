import { Elysia, t } from "elysia";
import type { Deps } from "../deps.ts";
import { ErrorBody, HttpError, unprocessable } from "../errors.ts";
import { LineItem, Slug } from "../jobs/model.ts";
import { startOnce } from "../jobs/service.ts";

const Order = t.Object({
  order_id: t.String(),
  user_id: t.Union([t.String(), t.Null()]),
  kind: t.String(),
  status: t.String(),
  items: t.Array(
    t.Object({ sku: t.String(), qty: t.Integer(), unit_price_cents: t.Integer(), line_cents: t.Integer() }),
  ),
  total_cents: t.Integer(),
  discount_cents: t.Integer(),
  charge_id: t.Union([t.String(), t.Null()]),
  tracking: t.Union([t.String(), t.Null()]),
  created_at: t.Number(),
});
type Order = typeof Order.static;

/** How long POST /users/:id/orders waits for the order before answering 202 with the job. */
const CHECKOUT_WAIT_MS = 10_000;

/** `place_order` in the business group, once per Idempotency-Key. */
export async function placeOrder(
  deps: Deps,
  userId: string,
  key: string,
  cart: { sku: string; qty: number }[],
): Promise<{ order: Order } | { pending: string }> {
  const id = `checkout:${userId}:${key}`;
  const orderId = `${userId}:${key}`;
  await startOnce(deps, id, "place_order", [userId, orderId, cart], deps.targets.business, () =>
    unprocessable(
      "idempotency_key_reused",
      `Idempotency-Key ${key} was already used with a different request`,
    ),
  );
  const handle = await deps.resonate.get<{ order: Order } | { error: string; sku: string }>(id);
  let timer: Timer | undefined;
  const result = await Promise.race([
    handle.result(),
    new Promise<undefined>((resolve) => {
      timer = setTimeout(resolve, CHECKOUT_WAIT_MS);
    }),
  ]).finally(() => clearTimeout(timer));
  if (result === undefined) return { pending: id };
  if ("error" in result) throw unprocessable("unknown_sku", `unknown sku ${result.sku}`);
  return { order: result.order };
}

export async function listOrders(deps: Deps, userId: string): Promise<Order[]> {
  const handle = await deps.launcher.begin<Order[]>(
    `lookup:orders:${userId}:${crypto.randomUUID()}`,
    "query_orders",
    [userId],
    {
      target: deps.targets.db,
      timeout: 10_000,
    },
  );
  return handle.result();
}

export const userRoutes = (deps: Deps) =>
  new Elysia({ name: "users", prefix: "/users" })
    .post(
      "/:id/orders",
      async ({ params, body, headers, set, status }) => {
        const key = headers["idempotency-key"];
        if (!key)
          throw new HttpError(400, "missing_idempotency_key", "the Idempotency-Key header is required");
        if (!/^[A-Za-z0-9_-]{1,128}$/.test(key)) {
          throw new HttpError(
            400,
            "invalid_idempotency_key",
            "Idempotency-Key must be 1-128 letters, digits, _ or -",
          );
        }
        const outcome = await placeOrder(deps, params.id, key, body.cart);
        if ("pending" in outcome) {
          set.headers.location = `/jobs/${encodeURIComponent(outcome.pending)}`;
          return status(202, { job_id: outcome.pending, status: "running" as const });
        }
        return status(201, outcome.order);
      },
      {
        params: t.Object({ id: Slug }),
        body: t.Object({ cart: t.Array(LineItem, { minItems: 1, maxItems: 100 }) }),
        headers: t.Object({ "idempotency-key": t.Optional(t.String()) }),
        response: {
          201: Order,
          202: t.Object({ job_id: t.String(), status: t.Literal("running") }),
          400: ErrorBody,
          422: ErrorBody,
        },
        detail: {
          summary: "Place an order (business group, which reads and writes through the db group)",
          tags: ["users"],
        },
      },
    )
    .get(
      "/:id/orders",
      async ({ params }) => ({ user_id: params.id, orders: await listOrders(deps, params.id) }),
      {
        params: t.Object({ id: Slug }),
        response: { 200: t.Object({ user_id: t.String(), orders: t.Array(Order) }), 422: ErrorBody },
        detail: { summary: "A user's orders, read through the db group", tags: ["users"] },
      },
    );
