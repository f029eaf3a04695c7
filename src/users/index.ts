import { Elysia } from "elysia";
import { callers } from "../auth/index.ts";
import type { CallerAuth } from "../auth/service.ts";
import type { Deps } from "../deps.ts";
import { Links, linkTo, models, ResponseHeaders } from "../models.ts";
import { UserModels } from "./model.ts";
import { idempotencyKey, listOrders, placeOrder } from "./service.ts";

/** From a checkout to the user's orders, which then include it. */
const listOrdersLink = {
  ListOrders: linkTo(
    "listOrders",
    { "path.id": "$request.path.id" },
    "the user's orders, this one among them",
  ),
};

export const userRoutes = (deps: Deps, auth: CallerAuth) =>
  new Elysia({ name: "users", prefix: "/users" })
    .use(models)
    // A user's routes are that user's own (`actsFor`): checked before the body or the Idempotency-Key is read.
    .use(callers(auth))
    .post(
      "/:id/orders",
      async ({ params, body, caller, request, set, status }) => {
        const key = idempotencyKey(request.headers.get("idempotency-key") ?? undefined);
        const outcome = await placeOrder(deps, params.id, key, body.cart, caller);
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
        response: {
          201: "Order",
          202: "CheckoutPending",
          400: "Error",
          403: "Error",
          415: "Error",
          422: "Error",
        },
        caller: { actsFor: "id" },
        detail: {
          operationId: "placeOrder",
          summary: "Place an order (business group, which reads and writes through the db group)",
          tags: ["users"],
          responses: {
            201: { description: "The order, placed", links: listOrdersLink },
            202: {
              description: "The order was not placed within 10 s; its job goes on",
              headers: ResponseHeaders.location,
              links: { ...Links.readJob, ...listOrdersLink },
            },
          },
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
        response: { 200: "UserOrders", 403: "Error", 422: "Error" },
        caller: { actsFor: "id" },
        detail: {
          operationId: "listOrders",
          summary: "A user's orders, read through the db group",
          tags: ["users"],
        },
      },
    );
