import { Elysia, t } from "elysia";
import type { Deps } from "../deps.ts";
import { ErrorBody } from "../errors.ts";
import { Slug } from "../schemas.ts";
import { type ApprovalWebhook, type PaymentWebhook, WebhookModels } from "./model.ts";
import { acceptApproval, acceptPayment, parseBody, verifySignature } from "./service.ts";

const responses = {
  200: WebhookModels.accepted,
  401: ErrorBody,
  404: ErrorBody,
  409: ErrorBody,
  422: ErrorBody,
  503: ErrorBody,
};

/**
 * Signed webhooks (Standard Webhooks). The body is read raw, because the
 * signature covers the exact bytes; it is parsed only after it verifies.
 */
export const webhookRoutes = (deps: Deps, secret: string) =>
  new Elysia({ name: "webhooks", prefix: "/webhooks" })
    .post(
      "/approval/:id",
      ({ params, body, request }) => {
        const webhookId = verifySignature(secret, body, request.headers);
        return acceptApproval(
          deps,
          params.id,
          parseBody<ApprovalWebhook>(WebhookModels.approval, body),
          webhookId,
        );
      },
      {
        parse: "text",
        body: t.String({ description: "JSON: {approved, approver?, reason?}" }),
        params: t.Object({ id: Slug }),
        response: responses,
        detail: { summary: "Approval decision for an order held by approve-and-ship", tags: ["webhooks"] },
      },
    )
    .post(
      "/payment",
      ({ body, request }) => {
        const webhookId = verifySignature(secret, body, request.headers);
        return acceptPayment(deps, parseBody<PaymentWebhook>(WebhookModels.payment, body), webhookId);
      },
      {
        parse: "text",
        body: t.String({
          description: "JSON: {type: charge.succeeded|charge.failed, data: {charge_id, order_id, callback}}",
        }),
        response: responses,
        detail: { summary: "The payment provider's charge events", tags: ["webhooks"] },
      },
    );
