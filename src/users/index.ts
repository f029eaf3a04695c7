import { Elysia } from "elysia";
import type { Deps } from "../deps.ts";
import { models } from "../models.ts";
import { UserModels } from "./model.ts";
import { idempotencyKey, listOrders, placeOrder } from "./service.ts";

export const userRoutes = (deps: Deps) =>
  new Elysia({ name: "users", prefix: "/users" })
    .use(models)
    .post(
      "/:id/orders",
      async ({ params, body, request, set, status }) => {
        const key = idempotencyKey(request.headers.get("idempotency-key") ?? undefined);
        const outcome = await placeOrder(deps, params.id, key, body.cart);
        if ("pending" in outcome) {
          set.headers.location = `/jobs/${encodeURIComponent(outcome.pending)}`;
          return status(202, { job_id: outcome.pending, status: "running" as const });
        }
        return status(201, outcome.order);
      },
      {
        parse: "json",
        params: UserModels.params,
        body: "Checkout",
        response: { 201: "Order", 202: "CheckoutPending", 400: "Error", 415: "Error", 422: "Error" },
        detail: {
          summary: "Place an order (business group, which reads and writes through the db group)",
          tags: ["users"],
          // Checked by the route (400 when missing or malformed), not by the schema (which would say 422).
          parameters: [UserModels.idempotencyKeyParameter],
        },
      },
    )
    .get(
      "/:id/orders",
      async ({ params }) => ({ user_id: params.id, orders: await listOrders(deps, params.id) }),
      {
        params: UserModels.params,
        response: { 200: "UserOrders", 422: "Error" },
        detail: { summary: "A user's orders, read through the db group", tags: ["users"] },
      },
    );
