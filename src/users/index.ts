import { Elysia } from "elysia";
import type { Deps } from "../deps.ts";
import { ErrorBody } from "../errors.ts";
import { UserModels } from "./model.ts";
import { idempotencyKey, listOrders, placeOrder } from "./service.ts";

export const userRoutes = (deps: Deps) =>
  new Elysia({ name: "users", prefix: "/users" })
    .post(
      "/:id/orders",
      async ({ params, body, headers, set, status }) => {
        const key = idempotencyKey(headers["idempotency-key"]);
        const outcome = await placeOrder(deps, params.id, key, body.cart);
        if ("pending" in outcome) {
          set.headers.location = `/jobs/${encodeURIComponent(outcome.pending)}`;
          return status(202, { job_id: outcome.pending, status: "running" as const });
        }
        return status(201, outcome.order);
      },
      {
        params: UserModels.params,
        body: UserModels.checkout,
        headers: UserModels.checkoutHeaders,
        response: { 201: UserModels.order, 202: UserModels.pending, 400: ErrorBody, 422: ErrorBody },
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
        params: UserModels.params,
        response: { 200: UserModels.orders, 422: ErrorBody },
        detail: { summary: "A user's orders, read through the db group", tags: ["users"] },
      },
    );
