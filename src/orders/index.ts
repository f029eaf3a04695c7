import { Elysia } from "elysia";
import { callers } from "../auth/index.ts";
import type { CallerAuth } from "../auth/service.ts";
import type { Deps } from "../deps.ts";
import { Links, linkTo, models, ResponseHeaders } from "../models.ts";
import { OrderModels } from "./model.ts";
import { startApproval } from "./service.ts";

export const orderRoutes = (deps: Deps, auth: CallerAuth) =>
  new Elysia({ name: "orders", prefix: "/orders" })
    .use(models)
    .use(callers(auth))
    .post(
      "/:id/approve-and-ship",
      async ({ params, caller, set, status }) => {
        const id = await startApproval(deps, params.id, caller);
        set.headers.location = `/jobs/${encodeURIComponent(id)}`;
        return status(202, { job_id: id, status: "pending_approval" as const });
      },
      {
        params: OrderModels.params,
        response: { 202: "ApprovalPending", 404: "Error", 409: "Error", 422: "Error" },
        caller: true,
        detail: {
          operationId: "approveAndShip",
          summary: "Hold an order until the approval webhook decides, then ship it",
          tags: ["orders"],
          responses: {
            202: {
              description: "The order waits for its approval webhook",
              headers: ResponseHeaders.location,
              links: {
                ...Links.readJob,
                Decide: linkTo(
                  "approvalWebhook",
                  { "path.id": "$request.path.id" },
                  "the approval webhook that decides this order",
                ),
              },
            },
          },
        },
      },
    );
