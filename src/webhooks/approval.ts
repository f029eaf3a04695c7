import { Db } from "../../core/functions.ts";
import { askDb, type Deps } from "../deps.ts";

/**
 * The promise that stands for an order's approval, as the db group recorded
 * it: the workflow's approval promise, or the cancel record of a cancel
 * that came before the workflow recorded it; null while neither has. Once
 * found it never changes, so it is kept in `deps.approvalIds`.
 */
export async function approvalPromiseId(deps: Deps, orderId: string): Promise<string | null> {
  const cached = deps.approvalIds.get(orderId);
  if (cached) return cached;
  const id = await askDb(deps, Db.findCallback, `approval:${orderId}`, ["approval", orderId]);
  if (id) deps.approvalIds.set(orderId, id);
  return id;
}

/**
 * Records `promiseId` as the order's approval unless one is recorded
 * already (the first writer wins), and returns the one recorded: a cancel
 * that comes before the workflow has recorded its approval promise takes
 * the place, so the workflow, and any webhook after it, learns of it.
 */
export async function claimApprovalPromise(deps: Deps, orderId: string, promiseId: string): Promise<string> {
  const id = await askDb(deps, Db.registerCallback, `approval-claim:${orderId}`, [
    "approval",
    orderId,
    promiseId,
  ]);
  deps.approvalIds.set(orderId, id);
  return id;
}
