import { invocationOf } from "./durable.ts";
import type { PromiseSearch } from "./search.ts";

/** Which workflow versions jobs are still running at: pending job ids by `<function>@<version>`. */
export type PendingVersions = Map<string, string[]>;

/** `<function>@<version>`, as the census and `--retire` name a version. */
export const versionKey = (func: string, version: number) => `${func}@${version}`;

/**
 * The pending jobs (roots tagged `job`: orders, approvals, checkouts), by the
 * function and version each was started at, read through `promise.search`
 * a page at a time. What a version's retirement waits for: none of its jobs
 * pending. Quotes and the API's lookups are not jobs; they end within their
 * own short timeouts (QUOTE_TIMEOUT_MS, 10 s).
 */
export async function pendingVersions(search: PromiseSearch, pageSize = 100): Promise<PendingVersions> {
  const pending: PendingVersions = new Map();
  let cursor: string | undefined;
  do {
    const page = await search({ state: "pending", tags: { job: "true" }, limit: pageSize, cursor });
    for (const promise of page.promises) {
      const { func, version } = invocationOf(promise.param) as { func?: string; version?: number };
      if (!func) continue;
      const key = versionKey(func, version ?? 1);
      const ids = pending.get(key) ?? [];
      ids.push(promise.id);
      pending.set(key, ids);
    }
    cursor = page.cursor;
  } while (cursor);
  return pending;
}
