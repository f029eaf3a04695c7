import { t } from "elysia";
import { Text } from "../schemas.ts";

export const WebhookModels = {
  approval: t.Object({
    approved: t.Boolean(),
    approver: t.Optional(Text({ maxLength: 200 })),
    reason: t.Optional(Text({ maxLength: 2000 })),
  }),
  payment: t.Object({
    id: t.Optional(t.String()),
    type: t.Union([t.Literal("charge.succeeded"), t.Literal("charge.failed")]),
    data: t.Object({
      charge_id: t.String({ minLength: 1 }),
      order_id: t.String({ minLength: 1 }),
      callback: t.String({ minLength: 1 }),
      failure_code: t.Optional(t.String()),
    }),
  }),
  accepted: t.Object({
    promise_id: t.String(),
    outcome: t.String(),
    duplicate: t.Boolean({
      description: "true when an earlier delivery had already settled it the same way",
    }),
  }),
} as const;

export type ApprovalWebhook = typeof WebhookModels.approval.static;
export type PaymentWebhook = typeof WebhookModels.payment.static;
export type Accepted = typeof WebhookModels.accepted.static;
