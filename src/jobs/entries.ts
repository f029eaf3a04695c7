import type { Caller } from "../auth/service.ts";
import type { Deps, PromiseRecord } from "../deps.ts";
import { isNotFound } from "../resonate/durable.ts";

/**
 * What `GET /jobs` pages through, newest first. `promise.search` answers in
 * ascending id (the real server's `ORDER BY id`), and a job's id is its
 * client's (`order:<order_id>`), so each job gets an entry: a promise of
 * its own, created just before the job's root promise, whose id sorts by
 * start time, newest first (`jobs:<9999999999999 − start ms>:<job id>`),
 * tagged with the job's kind and owner. The root promise names its entry
 * in its `job:entry` tag; an entry no root names (a start that never got
 * to create its root, or lost a race to another start) lists nothing.
 *
 * An entry is pending while its job may run. The list settles an entry
 * whose job it finds settled (or whose root names another entry), so
 * that `state=running` searches pending entries only; an entry times out
 * `ENTRY_GRACE_MS` after its job would have.
 */
export const ENTRY_TAG = "job:entry";

const ENTRY_ID = /^jobs:(\d{13}):(.+)$/;
const LATEST = 9_999_999_999_999;
const ENTRY_GRACE_MS = 60_000;

/** The tags an entry is found by. */
export function entryTags(kind: string | undefined, owner: string | undefined): Record<string, string> {
  const tags: Record<string, string> = { "jobs:entry": "true" };
  if (kind) tags["job:kind"] = kind;
  if (owner) tags["job:owner"] = owner;
  return tags;
}

export const entryId = (jobId: string, startedAt: number) =>
  `jobs:${String(LATEST - startedAt).padStart(13, "0")}:${jobId}`;

/** The job an entry id lists, and when it started; undefined for an id that is no entry's. */
export function entryOf(id: string): { jobId: string; startedAt: number } | undefined {
  const match = ENTRY_ID.exec(id);
  if (!match) return undefined;
  return { jobId: match[2] as string, startedAt: LATEST - Number(match[1]) };
}

/** When the job whose root promise is `root` started, as its entry says (ms); undefined for a job with no entry. */
export function startedAt(root: { tags?: Record<string, string> }): number | undefined {
  const entry = root.tags?.[ENTRY_TAG];
  return entry === undefined ? undefined : entryOf(entry)?.startedAt;
}

/**
 * Creates the entry for a job about to start (of `kind`, for `caller`),
 * pending until after the job's `timeoutMs`; returns the tag its root
 * promise is to carry.
 */
export async function createEntry(
  deps: Deps,
  jobId: string,
  kind: string,
  caller: Caller,
  timeoutMs: number,
): Promise<Record<string, string>> {
  const startedAt = deps.startClock();
  const id = entryId(jobId, startedAt);
  await deps.resonate.promises.create(id, startedAt + timeoutMs + ENTRY_GRACE_MS, {
    tags: entryTags(kind, caller.sub),
  });
  return { [ENTRY_TAG]: id };
}

/**
 * The root promise of the job `entry` lists, or undefined when it lists
 * none (no root, or a root that names another entry). Settles a pending
 * entry whose job has settled (resolved) or that its root disowns
 * (rejected); a failure to settle it is left for the next read.
 */
export async function rootOf(deps: Deps, entry: PromiseRecord): Promise<PromiseRecord | undefined> {
  const listed = entryOf(entry.id);
  if (!listed) return undefined;
  let root: PromiseRecord;
  try {
    root = await deps.resonate.promises.get(listed.jobId);
  } catch (error) {
    // The start may still be on its way from entry to root: it is left pending.
    if (isNotFound(error)) return undefined;
    throw error;
  }
  const owned = root.tags?.[ENTRY_TAG] === entry.id;
  if (entry.state === "pending" && (!owned || root.state !== "pending")) {
    const settle = owned ? deps.resonate.promises.resolve(entry.id) : deps.resonate.promises.reject(entry.id);
    await settle.catch((error: unknown) =>
      deps.log.warn({ entry: entry.id, err: error }, "job entry not settled"),
    );
  }
  return owned ? root : undefined;
}
