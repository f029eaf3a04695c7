/**
 * What a job is, for the API and the workers alike: its id (the root
 * promise of its workflow), the status a client sees for it, and its
 * cancel record. A job's id comes from the request (`order:<order_id>`,
 * `ship:<order_id>`, `checkout:<user>:<idempotency key>`), so a retried
 * request finds the job the first one started.
 */
import type { Resonate } from "@resonatehq/sdk";
import type { Canceled } from "./functions.ts";
import { decodeValue, encodeValue, findPromise, type PromiseState } from "./resonate/durable.ts";

/** The kinds of job, as their root promise's `job:kind` tag says. */
export type JobKind = "order" | "approval" | "checkout";

/** The id of an order's job (`process_order`). */
export const orderJobId = (orderId: string) => `order:${orderId}`;

/** The id of an order's approval job (`approve_then_ship`). */
export const shipJobId = (orderId: string) => `ship:${orderId}`;

/** The id of a user's checkout job (`place_order`), one per idempotency key. */
export const checkoutJobId = (userId: string, key: string) => `checkout:${userId}:${key}`;

/** The order an approval job is for; undefined for any other id. */
export const orderOfShipJob = (jobId: string) =>
  jobId.startsWith("ship:") ? jobId.slice("ship:".length) : undefined;

/** The ids a client may read as jobs (not their workflows' internal child promises). */
export const JOB_ID = /^(order|ship|checkout):[A-Za-z0-9_:-]{1,200}$/;

/** The jobs a client may cancel: `order:` (`process_order`) and `ship:` (`approve_then_ship`). */
export const CANCELABLE_JOB = /^(order|ship):[A-Za-z0-9_-]{1,64}$/;

/** The job status a client sees for a workflow's promise state. */
export function jobStatus(state: PromiseState): "running" | "done" | "failed" | "timed_out" | "canceled" {
  switch (state) {
    case "pending":
      return "running";
    case "resolved":
      return "done";
    case "rejected":
      return "failed";
    case "rejected_timedout":
      return "timed_out";
    case "rejected_canceled":
      return "canceled";
  }
}

/**
 * A job's cancel record, the durable promise `cancel:<job id>`. Whoever
 * creates it first decides, because creating an id that exists returns the
 * record already there, unchanged: the API creates it holding a cancel
 * request; the workflow, before the one step no cancel can undo (shipping),
 * creates it sealed. So a cancel either is seen by the workflow before it
 * ships (or records a failed payment), or is refused as too late; never
 * both, never neither. Both
 * sides decide by the record's `param` (what its creator wrote), then
 * resolve it with the same value.
 */
export type CancelRecord =
  | { canceled: true; reason?: string; requested_at: number }
  | { canceled: false; sealed: SealedStage; sealed_at: number };

/**
 * Where a workflow sealed its cancel record: just before it ships, or just
 * before it records an end a cancel could no longer change (a payment that
 * failed).
 */
export type SealedStage = "shipping" | "finishing";

export type CancelRequest = Extract<CancelRecord, { canceled: true }>;

/** The id of a job's cancel record (outside the job's own lineage, and not itself a job id). */
export const cancelRecordId = (jobId: string) => `cancel:${jobId}`;

/** The record a promise holds, from what its creator wrote (`param`); undefined when it is no cancel record. */
export function cancelRecordOf(promise: { param?: { data?: string } }): CancelRecord | undefined {
  const record = decodeValue<CancelRecord>(promise.param?.data);
  return typeof record === "object" && record !== null && typeof record.canceled === "boolean"
    ? record
    : undefined;
}

/** The part of a Resonate client the cancel record needs. */
type PromiseStore = Pick<Resonate["promises"], "get" | "create" | "resolve">;

/** A job's cancel record, read without writing; undefined when there is none. */
export async function readCancelRecord(
  promises: PromiseStore,
  jobId: string,
): Promise<CancelRecord | undefined> {
  const record = await findPromise(promises, cancelRecordId(jobId));
  return record && cancelRecordOf(record);
}

/** Whether a cancel was asked of the job `jobId` (never of a job that cannot be canceled). */
export async function cancelRequested(promises: PromiseStore, jobId: string): Promise<boolean> {
  return CANCELABLE_JOB.test(jobId) && (await readCancelRecord(promises, jobId))?.canceled === true;
}

/** Whether a workflow's result says it stopped because it was canceled. */
export function isCanceledResult(result: unknown): result is Canceled {
  return (result as { status?: unknown } | undefined)?.status === "canceled";
}

/**
 * Creates a job's cancel record holding `record` unless one exists, and
 * settles it; returns the record that won (this one, or the one there
 * first). `timeoutAt` is the job's own: the record need not outlive it.
 */
export async function writeCancelRecord(
  promises: PromiseStore,
  jobId: string,
  record: CancelRecord,
  timeoutAt: number,
): Promise<CancelRecord> {
  const id = cancelRecordId(jobId);
  const stored = await promises.create(id, timeoutAt, { data: encodeValue(record) });
  const winner = cancelRecordOf(stored);
  if (!winner) throw new Error(`promise ${id} is not a cancel record`);
  if (stored.state === "pending") await promises.resolve(id, { data: stored.param.data });
  return winner;
}
