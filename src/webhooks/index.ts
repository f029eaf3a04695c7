import { type DocumentDecoration, Elysia, t } from "elysia";
import type { Deps } from "../deps.ts";
import { models, unavailableResponse } from "../models.ts";
import { Slug } from "../schemas.ts";
import { type ApprovalWebhook, type PaymentWebhook, WebhookModels } from "./model.ts";
import { acceptApproval, acceptPayment, parseBody, verifySignature } from "./service.ts";

const responses = {
  200: "WebhookAccepted",
  400: "Error",
  401: "Error",
  404: "Error",
  409: "Error",
  415: "Error",
  422: "Error",
  503: "Error",
} as const;

/**
 * What the document says of a webhook's request: a JSON body of `schema`
 * and the three Standard Webhooks headers. The route itself reads the body
 * as text, because the signature covers its exact bytes.
 */
const signed = (schema: "ApprovalWebhook" | "PaymentWebhook"): DocumentDecoration => ({
  requestBody: {
    required: true,
    content: { "application/json": { schema: { $ref: `#/components/schemas/${schema}` } } },
  },
  parameters: [
    {
      name: "webhook-id",
      description: "the delivery's id; a redelivery repeats it",
      schema: { type: "string" as const, minLength: 1 },
    },
    {
      name: "webhook-timestamp",
      description: "seconds since the epoch; at most 5 minutes off",
      schema: { type: "string" as const, pattern: "^[0-9]{1,12}$" },
    },
    {
      name: "webhook-signature",
      description: "v1,<base64 HMAC-SHA256 of id.timestamp.body>",
      schema: { type: "string" as const, minLength: 1 },
    },
  ].map((header) => ({ ...header, in: "header" as const, required: true })),
  responses: { 503: unavailableResponse },
});

/**
 * Signed webhooks (Standard Webhooks). The body is read raw, because the
 * signature covers the exact bytes; it is parsed only after it verifies.
 */
export const webhookRoutes = (deps: Deps, secret: string) =>
  new Elysia({ name: "webhooks", prefix: "/webhooks" })
    .use(models)
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
        body: t.String(),
        params: t.Object({ id: Slug }),
        response: responses,
        detail: {
          operationId: "approvalWebhook",
          summary: "Approval decision for an order held by approve-and-ship",
          tags: ["webhooks"],
          ...signed("ApprovalWebhook"),
        },
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
        body: t.String(),
        response: responses,
        detail: {
          operationId: "paymentWebhook",
          summary: "The payment provider's charge events",
          tags: ["webhooks"],
          ...signed("PaymentWebhook"),
        },
      },
    );
