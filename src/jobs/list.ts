import { PromiseSearchError, type PromiseSearchQuery } from "../../core/resonate/search.ts";
import type { Caller } from "../auth/service.ts";
import type { Deps, PromiseRecord } from "../deps.ts";
import { HttpError } from "../errors.ts";
import { entryTags, keptJob, rootOf, settleEntry } from "./entries.ts";
import type { Job, JobListQuery } from "./model.ts";
import { jobOf, visibleTo } from "./service.ts";

/** Search pages one request may read while it filters (a page of `canceled` may hold few). */
const MAX_SEARCH_PAGES = 5;

export const LIST_DEFAULTS = { limit: 20, maxLimit: 100 } as const;

/** What a cursor holds: the server's cursor, bound to the query it continues. */
interface Cursor {
  /** The Resonate server's cursor. */
  r: string;
  /** The query it belongs to: state, kind, owner filter. */
  q: string;
}

const queryKey = (q: JobListQuery, caller: Caller) =>
  `${q.state ?? ""}|${q.kind ?? ""}|${caller.operator ? "*" : caller.sub}`;

function encodeCursor(cursor: Cursor): string {
  return Buffer.from(JSON.stringify(cursor), "utf8").toString("base64url");
}

function decodeCursor(raw: string, key: string): string {
  let cursor: Partial<Cursor> | undefined;
  try {
    cursor = JSON.parse(Buffer.from(raw, "base64url").toString("utf8")) as Partial<Cursor>;
  } catch {
    cursor = undefined;
  }
  if (typeof cursor?.r !== "string" || typeof cursor.q !== "string")
    throw new HttpError(400, "invalid_cursor", "cursor is not one this API handed out");
  if (cursor.q !== key)
    throw new HttpError(
      400,
      "invalid_cursor",
      "cursor belongs to a list with other filters (or another caller)",
    );
  return cursor.r;
}

/**
 * A page of the caller's jobs (every caller's for an operator), newest
 * first, through the Resonate server's `promise.search` over the jobs'
 * list entries (entries.ts), by the kind and owner they are tagged with.
 * `state=running` searches pending entries; a status is checked against
 * each job (the one its entry keeps, or read through its root), reading at
 * most `MAX_SEARCH_PAGES` server pages, so a page may hold fewer than
 * `limit` jobs and still have a cursor.
 */
export async function listJobs(
  deps: Deps,
  caller: Caller,
  q: JobListQuery,
): Promise<{ jobs: Job[]; next_cursor?: string }> {
  const key = queryKey(q, caller);
  const limit = q.limit ?? LIST_DEFAULTS.limit;
  const tags = entryTags(q.kind, caller.operator ? undefined : caller.sub);
  let cursor = q.cursor === undefined ? undefined : decodeCursor(q.cursor, key);
  const jobs: Job[] = [];
  for (let page = 0; page < MAX_SEARCH_PAGES && jobs.length < limit; page++) {
    const query: PromiseSearchQuery = { tags, limit: limit - jobs.length };
    if (q.state === "running") query.state = "pending";
    if (cursor !== undefined) query.cursor = cursor;
    let found: Awaited<ReturnType<Deps["search"]>>;
    try {
      found = await deps.search(query);
    } catch (error) {
      if (error instanceof PromiseSearchError && error.status === 501)
        throw new HttpError(
          501,
          "not_implemented",
          "the Resonate server this API uses cannot search promises",
        );
      if (error instanceof PromiseSearchError && error.status === 400)
        throw new HttpError(400, "invalid_cursor", "cursor is not one this API handed out");
      throw error;
    }
    // Each entry's job (and a running one's cancel record) is read at once, not one after the other.
    const page = await Promise.all(found.promises.map((entry) => listed(deps, entry, caller)));
    for (const job of page) {
      // A job whose cancel is asked still runs.
      const status = job?.status === "canceling" ? "running" : job?.status;
      if (job && (q.state === undefined || status === q.state)) jobs.push(job);
    }
    cursor = found.cursor;
    if (cursor === undefined) break;
  }
  return cursor === undefined ? { jobs } : { jobs, next_cursor: encodeCursor({ r: cursor, q: key }) };
}

/**
 * The job `entry` lists, as the caller may see it; undefined when it lists
 * none the caller may see. A settled entry keeps its job; a pending one is
 * read through its root, and settled once its job has (see entries.ts).
 */
async function listed(deps: Deps, entry: PromiseRecord, caller: Caller): Promise<Job | undefined> {
  const kept = keptJob(entry);
  if (kept) return visibleTo(entry, caller) ? kept : undefined;
  const { root, disowned } = await rootOf(deps, entry);
  if (disowned && entry.state === "pending") await settleEntry(deps, entry);
  if (!root || !visibleTo(root, caller)) return undefined;
  const job = await jobOf(deps, root.id, root);
  if (entry.state === "pending" && root.state !== "pending") await settleEntry(deps, entry, job);
  return job;
}
