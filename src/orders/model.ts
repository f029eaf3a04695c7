import { t } from "elysia";
import { Slug } from "../schemas.ts";

export const OrderModels = {
  params: t.Object({ id: Slug }),
  pendingApproval: t.Object({ job_id: t.String(), status: t.Literal("pending_approval") }),
} as const;
