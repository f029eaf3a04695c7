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

/** Response headers the document declares on the answers that carry them. */
export const ResponseHeaders = {
  /** Where to read what a 202 started: a job, or a pending quote. */
  location: {
    Location: {
      description: "where to read what was started, relative to the API",
      required: true,
      schema: { type: "string" as const },
    },
  },
  /** Seconds to wait before asking again. */
  retryAfter: {
    "Retry-After": {
      description: "seconds to wait before asking again",
      required: true,
      schema: { type: "string" as const, pattern: "^[0-9]+$" },
    },
  },
  /** The wait a `Prefer: wait` was honoured with (RFC 7240), when one was asked for. */
  preferenceApplied: {
    "Preference-Applied": {
      description: "`wait=<seconds>`: the wait this answer honoured, when one was asked for",
      required: false,
      schema: { type: "string" as const },
    },
  },
} as const;

/**
 * An OpenAPI link to the operation `operationId`, its parameters taken from
 * this request or response (`"path.id": "$response.body#/job_id"`): how a
 * client, or a stateful test, gets from an answer to the next request.
 */
export const linkTo = (operationId: string, parameters: Record<string, string>, description: string) => ({
  operationId,
  parameters,
  description,
});

/** The 503 of a route that sheds or is not ready yet: `unavailable()` always says when to come back. */
export const unavailableResponse = {
  description: "Not now: ask again after Retry-After seconds",
  headers: ResponseHeaders.retryAfter,
};

/** Links more than one operation's answers have. */
export const Links = {
  /** From an answer that names a job (`job_id`) to reading that job. */
  readJob: { GetJob: linkTo("getJob", { "path.id": "$response.body#/job_id" }, "read the job this started") },
} as const;
