import { type Deps, readPromise } from "../deps.ts";
import { conflict, errorMessage, notFound } from "../errors.ts";
import { Orders } from "../functions.ts";
import { decodeValue, jobStatus, type PromiseState } from "../resonate/durable.ts";
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
  await deps.launcher.startOnce(
    Orders.processOrder,
    id,
    [req.order_id, req.items, req.payment_source ?? "tok_visa"],
    { target: deps.targets.orders, timeout: deps.config.workflowTimeoutMs },
    () => conflict(`order ${req.order_id} was already submitted with different contents`),
  );
  return id;
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
