import type { TSchema } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { Webhook, WebhookVerificationError } from "standardwebhooks";
import { orderJobId, shipJobId } from "../../core/jobs.ts";
import type { DeliveryOutcome } from "../../core/observability/metrics.ts";
import { inTraceOf, traced } from "../../core/observability/tracing.ts";
import { decodeValue, encodeValue, isNotFound } from "../../core/resonate/durable.ts";
import { originOf } from "../../core/resonate/task-leases.ts";
import { type Deps, readPromise } from "../deps.ts";
import { conflict, HttpError, notFound, unavailable, unprocessable } from "../errors.ts";
import { touchPromise, touchWorkflow } from "../observability/request-context.ts";
import { approvalPromiseId } from "./approval.ts";
import type { Accepted, ApprovalWebhook, PaymentWebhook } from "./model.ts";

/** The webhooks this API takes, as `webhook_deliveries_total` names them: `/webhooks/<name>…`. */
const WEBHOOK_ROUTE = /^\/webhooks\/(approval|payment)(?:\/|$)/;

/** A settled delivery: accepted, or a duplicate of one that was. */
function countAccepted(deps: Deps, webhook: "approval" | "payment", accepted: Accepted): Accepted {
  deps.metrics.webhookDeliveries.inc({ webhook, outcome: accepted.duplicate ? "duplicate" : "accepted" });
  return accepted;
}

/** The status a refused delivery is answered with, from what was thrown (see `errorHandler`). */
function refusedStatus(code: unknown, error: unknown): number {
  if (error instanceof HttpError) return error.status;
  if (code === "PARSE")
    return error instanceof Error && error.cause instanceof HttpError ? error.cause.status : 400;
  if (code === "VALIDATION") return 422;
  return 500;
}

const REFUSED: Record<number, DeliveryOutcome> = {
  400: "invalid",
  401: "bad_signature",
  404: "unknown",
  409: "conflict",
  415: "invalid",
  422: "invalid",
  503: "not_ready",
};

/**
 * Counts a delivery to a webhook route that was refused, whatever refused
 * it: the signature or body checks before `acceptApproval`/`acceptPayment`,
 * or their own refusals (unknown, conflict, not ready). Called from the
 * app's error hook with the matched route; anything else is not a webhook.
 */
export function countRefusedDelivery(
  deps: Deps,
  route: string | undefined,
  code: unknown,
  error: unknown,
): void {
  const webhook = route ? WEBHOOK_ROUTE.exec(route)?.[1] : undefined;
  if (!webhook) return;
  const outcome = REFUSED[refusedStatus(code, error)] ?? "error";
  deps.metrics.webhookDeliveries.inc({ webhook, outcome });
}

/**
 * Checks a Standard Webhooks signature (webhook-id, webhook-timestamp,
 * webhook-signature; 5 min tolerance) and returns the delivery's webhook-id.
 */
export function verifySignature(secret: string, raw: string, headers: Headers): string {
  try {
    new Webhook(secret).verify(raw, {
      "webhook-id": headers.get("webhook-id") ?? "",
      "webhook-timestamp": headers.get("webhook-timestamp") ?? "",
      "webhook-signature": headers.get("webhook-signature") ?? "",
    });
  } catch (error) {
    // verify() also parses the payload once the signature matches; only its own error means a bad signature.
    if (error instanceof WebhookVerificationError) {
      throw new HttpError(401, "invalid_signature", `webhook rejected: ${error.message}`);
    }
  }
  return headers.get("webhook-id") as string;
}

/** Parses a verified body against its schema; anything else is a 422 that names the field. */
export function parseBody<T>(schema: TSchema, raw: string): T {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw unprocessable("malformed_body", "webhook body is not valid JSON");
  }
  const errors = [...Value.Errors(schema, value)].map((e) => ({
    field: e.path.replace(/^\//, "").replaceAll("/", ".") || "body",
    message: e.message,
  }));
  if (errors.length > 0) {
    const first = errors[0] as { field: string; message: string };
    throw unprocessable("validation_failed", `invalid body: ${first.field}: ${first.message}`, errors);
  }
  return value as T;
}

/**
 * Settles `promiseId` with `value` unless it is already settled. The value
 * carries the delivery's `webhook-id`, so whichever delivery's settle won a
 * race is known: any other delivery that agrees with it is a duplicate
 * (200); one that contradicts it, or a promise that timed out, was
 * canceled or was settled by a cancel of its job, is a 409.
 */
async function settleOnce<T extends { webhook_id: string }>(
  deps: Deps,
  promiseId: string,
  value: T,
  agrees: (stored: T) => boolean,
): Promise<boolean> {
  // Traced: the settle is a span in the job's trace (its root promise's tags), linked to the delivery's request.
  if (!traced()) return settle(deps, promiseId, value, agrees);
  const root = await deps.resonate.promises.get(originOf(promiseId)).catch(() => undefined);
  return inTraceOf(root?.tags, `settle ${promiseId}`, { "resonate.promise_id": promiseId }, () =>
    settle(deps, promiseId, value, agrees),
  );
}

async function settle<T extends { webhook_id: string }>(
  deps: Deps,
  promiseId: string,
  value: T,
  agrees: (stored: T) => boolean,
): Promise<boolean> {
  let record = await readPromise(deps, promiseId, `promise ${promiseId}`);
  if (record.state === "pending") {
    record = await deps.resonate.promises.resolve(promiseId, { data: encodeValue(value) });
  }
  if (record.state !== "resolved") {
    throw conflict(`promise ${promiseId} is no longer waiting (${record.state})`);
  }
  const stored = decodeValue<T>(record.value?.data);
  // A cancel settled it (or took its place, see `claimApprovalPromise`): whatever the delivery says, it came too late.
  if ((stored as { canceled?: unknown } | undefined)?.canceled === true) {
    throw conflict(`promise ${promiseId} was settled by a cancel of the job`, { settled_with: stored });
  }
  if (stored === undefined || !agrees(stored)) {
    throw conflict(`promise ${promiseId} was already settled with a different outcome`, {
      settled_with: stored,
    });
  }
  return stored.webhook_id !== value.webhook_id;
}

/** The approval webhook: find the order's approval promise and settle it with the decision. */
export async function acceptApproval(
  deps: Deps,
  orderId: string,
  decision: ApprovalWebhook,
  webhookId: string,
): Promise<Accepted> {
  // The request's log line names the workflow, not the lookup that finds its promise.
  touchWorkflow(shipJobId(orderId));
  const promiseId = await approvalPromiseId(deps, orderId);
  if (!promiseId) {
    // The job may exist and simply not be waiting yet: senders retry on 503.
    try {
      touchPromise(shipJobId(orderId));
      const job = await deps.resonate.promises.get(shipJobId(orderId));
      if (job.state === "pending")
        throw unavailable(`order ${orderId} is not waiting for approval yet`, 1, "not_ready");
      throw conflict(`order ${orderId} is no longer waiting for approval (${job.state})`);
    } catch (error) {
      if (isNotFound(error)) throw notFound(`approval for order ${orderId}`);
      throw error;
    }
  }
  const value = {
    approved: decision.approved,
    approver: decision.approver,
    reason: decision.reason,
    webhook_id: webhookId,
  };
  const duplicate = await settleOnce(
    deps,
    promiseId,
    value,
    (stored) => stored.approved === decision.approved,
  );
  return countAccepted(deps, "approval", {
    promise_id: promiseId,
    outcome: decision.approved ? "approved" : "rejected",
    duplicate,
  });
}

/** The payment provider's webhook: the event carries the promise id the workflow handed the provider. */
export async function acceptPayment(deps: Deps, event: PaymentWebhook, webhookId: string): Promise<Accepted> {
  const { callback, order_id } = event.data;
  touchWorkflow(orderJobId(order_id));
  if (!callback.startsWith(`${orderJobId(order_id)}.`))
    throw notFound(`payment promise ${callback} for order ${order_id}`);
  const value = {
    type: event.type,
    charge_id: event.data.charge_id,
    failure_code: event.data.failure_code,
    webhook_id: webhookId,
  };
  const duplicate = await settleOnce(
    deps,
    callback,
    value,
    (stored) => stored.type === event.type && stored.charge_id === event.data.charge_id,
  );
  return countAccepted(deps, "payment", { promise_id: callback, outcome: event.type, duplicate });
}
