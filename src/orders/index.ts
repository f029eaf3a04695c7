import { Elysia, t } from "elysia";
import type { Deps } from "../deps.ts";
import { conflict, ErrorBody } from "../errors.ts";
import { Slug } from "../jobs/model.ts";
import { startOnce } from "../jobs/service.ts";

export const shipJobId = (orderId: string) => `ship:${orderId}`;

/** Starts `approve_then_ship` for an order; the approval webhook decides what happens next. */
export async function startApproval(deps: Deps, orderId: string): Promise<string> {
  const id = shipJobId(orderId);
  await startOnce(deps, id, "approve_then_ship", [orderId], deps.targets.orders, () =>
    conflict(`job ${id} exists and is not an approval workflow`),
  );
  return id;
}

export const orderRoutes = (deps: Deps) =>
  new Elysia({ name: "orders", prefix: "/orders" }).post(
    "/:id/approve-and-ship",
    async ({ params, set, status }) => {
      const id = await startApproval(deps, params.id);
      set.headers.location = `/jobs/${encodeURIComponent(id)}`;
      return status(202, { job_id: id, status: "pending_approval" as const });
    },
    {
      params: t.Object({ id: Slug }),
      response: {
        202: t.Object({ job_id: t.String(), status: t.Literal("pending_approval") }),
        409: ErrorBody,
        422: ErrorBody,
      },
      detail: { summary: "Hold an order until the approval webhook decides, then ship it", tags: ["orders"] },
    },
  );
