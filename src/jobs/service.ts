import type { ResonateHandle } from "@resonatehq/sdk";
import { Next, Orders } from "../../core/functions.ts";
import {
  cancelRequested,
  isCanceledResult,
  JOB_ID,
  type JobKind,
  jobStatus,
  orderJobId,
} from "../../core/jobs.ts";
import { linkToTrace } from "../../core/observability/tracing.ts";
import type { DurableFunction } from "../../core/resonate/contract.ts";
import { decodeValue, findPromise, type PromiseState } from "../../core/resonate/durable.ts";
import type { Caller } from "../auth/service.ts";
import { type Deps, type PromiseRecord, readPromise } from "../deps.ts";
import { conflict, errorMessage, notFound } from "../errors.ts";
import { createEntry, startedAt } from "./entries.ts";
import type { Job, SubmitJob } from "./model.ts";

/**
 * The tags a job's root promise is started with: it is a job, of this
 * kind, started by this caller. `GET /jobs` searches by them; `GET
 * /jobs/:id` shows a job only to its owner (or an operator).
 */
export function jobTags(kind: JobKind, caller: Caller): Record<string, string> {
  return { job: "true", "job:kind": kind, "job:owner": caller.sub };
}

/** A job to start: the worker group its workflow runs in, its kind and who starts it. */
export interface JobStart {
  target: string;
  kind: JobKind;
  caller: Caller;
}

/**
 * Starts a job's workflow under `id` with `Launcher.startOnce` (a retry
 * joins it; another request under the id, or another caller's, is
 * `onMismatch()`), with the job's tags and, for a job not there yet, a
 * list entry written first (see entries.ts), so that a job that exists is
 * always listed. Resolves once the workflow is durably created.
 */
export async function startJob<Args extends unknown[], Result>(
  deps: Deps,
  fn: DurableFunction<Args, Result>,
  id: string,
  args: Args,
  start: JobStart,
  onMismatch: () => Error,
): Promise<ResonateHandle<Result>> {
  const timeout = deps.config.workflowTimeoutMs;
  const marks = (await findPromise(deps.resonate.promises, id))
    ? undefined
    : await createEntry(deps, id, start.kind, start.caller, timeout);
  return deps.launcher.startOnce(
    fn,
    id,
    args,
    { target: start.target, timeout, tags: jobTags(start.kind, start.caller), ...(marks && { marks }) },
    onMismatch,
  );
}

/** Whether `caller` may see the job `promise` is the root of: its owner's, or any to an operator. */
export function visibleTo(promise: PromiseRecord, caller: Caller): boolean {
  return caller.operator || promise.tags?.["job:owner"] === caller.sub;
}

/** Reads a job's root promise; a job the caller may not see is as unknown as one that does not exist (404). */
export async function readJob(deps: Deps, id: string, caller: Caller): Promise<PromiseRecord> {
  if (!JOB_ID.test(id)) throw notFound(`job ${id}`);
  const promise = await readPromise(deps, id, `job ${id}`);
  if (!visibleTo(promise, caller)) throw notFound(`job ${id}`);
  linkToTrace(promise.tags);
  return promise;
}

/**
 * Starts `process_order` (at version 2 in the drill's `next` build) under `order:<order_id>` (or finds the one already
 * started). The invocation is durably created when this returns. A second
 * request for the same order with different contents, or from another
 * caller, is a conflict.
 */
export async function submitJob(deps: Deps, req: SubmitJob, caller: Caller): Promise<string> {
  const id = orderJobId(req.order_id);
  await startJob(
    deps,
    deps.config.workflowBuild === "next" ? Next.processOrderV2 : Orders.processOrder,
    id,
    [req.order_id, req.items, req.payment_source ?? "tok_visa"],
    { target: deps.targets.orders, kind: "order", caller },
    () =>
      conflict(`order ${req.order_id} was already submitted, with different contents or by another caller`),
  );
  return id;
}

/**
 * Reads a job without waiting: running (canceling once a cancel was asked),
 * done (+result), canceled (+result, and the reason given, when its
 * workflow stopped on a cancel), failed (+reason), timed_out or canceled.
 */
export async function getJob(deps: Deps, id: string, caller: Caller): Promise<Job> {
  return jobOf(deps, id, await readJob(deps, id, caller));
}

/** The job whose root promise is `promise`, as `GET /jobs/:id` shows it, with when it started. */
export async function jobOf(deps: Deps, id: string, promise: PromiseRecord): Promise<Job> {
  const job = await statusOf(deps, id, promise);
  const started = startedAt(promise);
  return started === undefined ? job : { ...job, started_at: new Date(started).toISOString() };
}

async function statusOf(deps: Deps, id: string, promise: PromiseRecord): Promise<Job> {
  const status = jobStatus(promise.state as PromiseState);
  if (status === "done") {
    const result = decodeValue(promise.value?.data);
    if (!isCanceledResult(result)) return { job_id: id, status, result };
    const reason = result.reason === undefined ? {} : { reason: result.reason };
    return { job_id: id, status: "canceled", ...reason, result };
  }
  if (status === "failed")
    return { job_id: id, status, reason: errorMessage(decodeValue(promise.value?.data)) };
  if (status === "running" && (await cancelRequested(deps.resonate.promises, id)))
    return { job_id: id, status: "canceling" };
  return { job_id: id, status };
}
