import { decodeValue, encodeValue, findPromise } from "../../core/resonate/durable.ts";
import type { Caller } from "../auth/service.ts";
import type { Deps, PromiseRecord } from "../deps.ts";
import type { Job } from "./model.ts";

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
 * whose job it finds settled, keeping the job in it (`keptJob`), and
 * rejects one whose root names another entry, so that `state=running`
 * searches pending entries only and a finished job is listed without a
 * read of its root; an entry times out `ENTRY_GRACE_MS` after its job
 * would have.
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

/** What an entry's root says of it: the root, when it names this entry; `disowned` when it names another. */
export interface EntryRoot {
  root?: PromiseRecord;
  disowned: boolean;
}

/** Reads the root promise of the job `entry` lists. A root not there yet (a start on its way, or cut short) neither owns nor disowns it. */
export async function rootOf(deps: Deps, entry: PromiseRecord): Promise<EntryRoot> {
  const listed = entryOf(entry.id);
  if (!listed) return { disowned: true };
  const root = await findPromise(deps.resonate.promises, listed.jobId);
  if (!root) return { disowned: false };
  return root.tags?.[ENTRY_TAG] === entry.id ? { root, disowned: false } : { disowned: true };
}

/**
 * The settled job an entry keeps: a pending entry whose job has settled is
 * resolved with the job as `GET /jobs` shows it (`settleEntry`), so a list
 * shows it again without reading its root. Undefined for any other entry.
 */
export function keptJob(entry: PromiseRecord): Job | undefined {
  if (entry.state !== "resolved") return undefined;
  let job: Partial<Job> | undefined;
  try {
    job = decodeValue<Partial<Job>>(entry.value?.data);
  } catch {
    return undefined;
  }
  return job?.job_id === entryOf(entry.id)?.jobId && typeof job?.status === "string"
    ? (job as Job)
    : undefined;
}

/**
 * Settles a pending entry: resolved with its settled `job`, or rejected
 * when its root disowns it (`job` undefined). A failure is left for the
 * next read: the entry stays pending, and is read through its root.
 */
export async function settleEntry(deps: Deps, entry: PromiseRecord, job?: Job): Promise<void> {
  const settled = job
    ? deps.resonate.promises.resolve(entry.id, { data: encodeValue(job) })
    : deps.resonate.promises.reject(entry.id);
  await settled.catch((error: unknown) =>
    deps.log.warn({ entry: entry.id, err: error }, "job entry not settled"),
  );
}
