import { Elysia } from "elysia";
import { ErrorBody } from "./errors.ts";
import { JobModels } from "./jobs/model.ts";
import { OrderModels } from "./orders/model.ts";
import { QuoteModels } from "./quotes/model.ts";
import { UserModels } from "./users/model.ts";
import { WebhookModels } from "./webhooks/model.ts";

/**
 * The schemas the published document names (`#/components/schemas/<name>`).
 * Each feature uses this plugin and refers to them by name, so a shared
 * shape is declared once and every route that answers it says so.
 */
export const models = new Elysia({ name: "models" }).model({
  Error: ErrorBody,
  JobSubmission: JobModels.submit,
  JobStarted: JobModels.started,
  Job: JobModels.job,
  QuoteRequest: QuoteModels.request,
  Quote: QuoteModels.quote,
  QuotePending: QuoteModels.pending,
  Checkout: UserModels.checkout,
  Order: UserModels.order,
  UserOrders: UserModels.orders,
  CheckoutPending: UserModels.pending,
  ApprovalPending: OrderModels.pendingApproval,
  ApprovalWebhook: WebhookModels.approval,
  PaymentWebhook: WebhookModels.payment,
  WebhookAccepted: WebhookModels.accepted,
});
