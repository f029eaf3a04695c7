import type { ApprovalDecision } from "../../core/functions.ts";
import {
  CANCELABLE_JOB,
  type CancelRecord,
  type CancelRequest,
  cancelRecordId,
  isCanceledResult,
  jobStatus,
  orderOfShipJob,
  writeCancelRecord,
} from "../../core/jobs.ts";
import { decodeValue, encodeValue, type PromiseState } from "../../core/resonate/durable.ts";
import type { Caller } from "../auth/service.ts";
import { type Deps, type PromiseRecord, readPromise } from "../deps.ts";
import { conflict } from "../errors.ts";
import { touchPromise } from "../observability/request-context.ts";
import { approvalPromiseId, claimApprovalPromise } from "../webhooks/approval.ts";
import type { CancelJob } from "./model.ts";
import { readJob } from "./service.ts";

/** What `POST /jobs/:id/cancel` answers: the workflow stopped (200), or it was asked to and still runs (202). */
export type CancelAnswer =
  | { code: 200; body: { job_id: string; status: "canceled" } }
  | { code: 202; body: { job_id: string; status: "canceling" } };

/**
 * The answer for a job that has ended: 200 when it ended canceled (its
 * workflow stopped on a cancel, or its promise was canceled by other
 * means), a 409 naming its state otherwise; undefined while it runs.
 */
function endedAnswer(id: string, job: PromiseRecord): CancelAnswer | undefined {
  const status = jobStatus(job.state as PromiseState);
  if (status === "running") return undefined;
  const result = status === "done" ? decodeValue(job.value?.data) : undefined;
  if (status === "canceled" || isCanceledResult(result))
    return { code: 200, body: { job_id: id, status: "canceled" } };
  const outcome = (result as { status?: unknown } | undefined)?.status;
  const details = typeof outcome === "string" ? { status, outcome } : { status };
  throw conflict(
    `job ${id} already finished: ${status}${typeof outcome === "string" ? ` (${outcome})` : ""}`,
    details,
  );
}

/** The 409 for a job whose workflow has passed the point where it looks for a cancel. */
function tooLate(id: string, record: Exclude<CancelRecord, CancelRequest>) {
  return conflict(`job ${id} can no longer be canceled: it is ${record.sealed}`, {
    status: "running",
    stage: record.sealed,
  });
}

/**
 * Wakes an `approve_then_ship` waiting for its approval: settles the
 * approval promise with the cancel (a webhook that settled it first wins
 * the approval, and the workflow sees the cancel before it ships). When the
 * workflow has not recorded its approval promise yet, the cancel record is
 * recorded in its place, and the workflow learns it from the db group.
 */
async function stopApproval(deps: Deps, jobId: string, orderId: string, request: CancelRequest) {
  const recordId = cancelRecordId(jobId);
  const promiseId =
    (await approvalPromiseId(deps, orderId)) ?? (await claimApprovalPromise(deps, orderId, recordId));
  if (promiseId === recordId) return;
  const approval = await readPromise(deps, promiseId, `promise ${promiseId}`);
  if (approval.state !== "pending") return;
  const decision: ApprovalDecision & { webhook_id: string } = {
    approved: false,
    canceled: true,
    reason: request.reason,
    requested_at: request.requested_at,
    webhook_id: recordId,
  };
  touchPromise(promiseId);
  await deps.resonate.promises.resolve(promiseId, { data: encodeValue(decision) });
}

/**
 * Asks the workflow of job `id` to stop: records the request in the job's
 * cancel record (`CancelRecord`; the first request's reason is kept), and
 * for an approval wakes the workflow. The workflow sees the request at its
 * next step boundary and undoes what it did. A job that has ended, or
 * whose workflow has sealed its record (it ships, or records a failed
 * payment), is a 409; so is a checkout, whose one step is its insert.
 * Unknown, or not the caller's: 404.
 */
export async function cancelJob(
  deps: Deps,
  id: string,
  req: CancelJob,
  caller: Caller,
): Promise<CancelAnswer> {
  const job = await readJob(deps, id, caller);
  if (!CANCELABLE_JOB.test(id))
    throw conflict(`job ${id} cannot be canceled: only order and approval jobs can`, {
      status: jobStatus(job.state as PromiseState),
    });
  const ended = endedAnswer(id, job);
  if (ended) return ended;

  touchPromise(cancelRecordId(id));
  const request: CancelRecord = {
    canceled: true,
    ...(req.reason === undefined ? {} : { reason: req.reason }),
    requested_at: deps.now(),
  };
  const record = await writeCancelRecord(deps.resonate.promises, id, request, job.timeoutAt);
  if (!record.canceled) throw tooLate(id, record);
  const approvalOf = orderOfShipJob(id);
  if (approvalOf !== undefined) await stopApproval(deps, id, approvalOf, record);
  // This process's event streams of the job show `canceling` now, not only once the job settles.
  deps.jobSignals.notify(id);

  const now = await readPromise(deps, id, `job ${id}`);
  return endedAnswer(id, now) ?? { code: 202, body: { job_id: id, status: "canceling" } };
}
