import { type Deps, readPromise } from "../deps.ts";
import { conflict, notFound } from "../errors.ts";
import { decodeValue, invocationOf, jobStatus, type PromiseState } from "../resonate/durable.ts";
import type { Job, SubmitJob } from "./model.ts";

/** The workflows a client may read as jobs (not their internal child promises). */
const JOB_ID = /^(order|ship|checkout):[A-Za-z0-9_:-]{1,200}$/;

export const jobId = (orderId: string) => `order:${orderId}`;

/**
 * Starts `process_order` under `order:<order_id>` (or finds the one already
 * started). The invocation is durably created when this returns. A second
 * request for the same order with different contents is a conflict.
 */
export async function submitJob(deps: Deps, req: SubmitJob): Promise<string> {
  const id = jobId(req.order_id);
  const args = [req.order_id, req.items, req.payment_source ?? "tok_visa"];
  await startOnce(deps, id, "process_order", args, deps.targets.orders, () =>
    conflict(`order ${req.order_id} was already submitted with different contents`),
  );
  return id;
}

/**
 * Starts `func` under `id` unless it exists; afterwards checks that the
 * stored invocation has the same arguments, so a retried request joins the
 * first one and a different request under the same id is refused.
 */
export async function startOnce(
  deps: Deps,
  id: string,
  func: string,
  args: unknown[],
  target: string,
  onMismatch: () => Error,
  timeout = deps.config.workflowTimeoutMs,
): Promise<void> {
  await deps.launcher.begin(id, func, args, { target, timeout });
  const stored = await deps.resonate.promises.get(id);
  const invocation = invocationOf(stored.param);
  if (invocation.func !== func || JSON.stringify(invocation.args) !== JSON.stringify(args))
    throw onMismatch();
}

/** Reads a job without waiting: running, done (+result), failed (+reason), timed_out or canceled. */
export async function getJob(deps: Deps, id: string): Promise<Job> {
  if (!JOB_ID.test(id)) throw notFound(`job ${id}`);
  const promise = await readPromise(deps, id, `job ${id}`);
  const status = jobStatus(promise.state as PromiseState);
  if (status === "done") return { job_id: id, status, result: decodeValue(promise.value?.data) };
  if (status === "failed")
    return { job_id: id, status, reason: errorMessage(decodeValue(promise.value?.data)) };
  return { job_id: id, status };
}

export function errorMessage(value: unknown): string {
  if (typeof value === "object" && value !== null && "message" in value) return String(value.message);
  if (value === undefined) return "failed";
  return typeof value === "string" ? value : JSON.stringify(value);
}
