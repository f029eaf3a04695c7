import { pendingVersions, versionKey } from "../../core/resonate/versions.ts";
import { getPromise, httpPromiseSearch } from "../protocol.ts";
import { readHistory } from "../replay/history.ts";
import { divergenceMessage, historyCode, replay } from "../replay/replay.ts";
import { waitFor } from "../wait-for.ts";

/** The workflows whose code the replay can register: the jobs. */
const REPLAYED = /^(order|ship|checkout):/;

/** What the deploy drill finds of the versions its jobs ran. */
export interface VersionReport {
  /** Finished jobs by the `<function>@<version>` they were started at. */
  started: Record<string, number>;
  /**
   * Jobs whose steps are not those of the version they were started at (a
   * job run, even in part, by another version's code), each with the replay's
   * divergence.
   */
  mismatches: { id: string; message: string }[];
}

/**
 * Replays every finished job of `ids` against the code of the version it
 * was started at, with both builds' code registered (`WORKFLOW_BUILD=next`
 * registers every version): a job any process ran with another version's
 * code parts from it.
 */
export async function checkVersions(resonateUrl: string, ids: readonly string[]): Promise<VersionReport> {
  const report: VersionReport = { started: {}, mismatches: [] };
  for (const id of ids.filter((id) => REPLAYED.test(id))) {
    const root = await getPromise(resonateUrl, id);
    if (!root || root.state === "pending") continue;
    const history = await readHistory((child) => getPromise(resonateUrl, child), id, "drill", "drill");
    const key = versionKey(history.workflow, history.version);
    report.started[key] = (report.started[key] ?? 0) + 1;
    const divergence = await replay(history, historyCode(history, { build: "next" }));
    if (divergence) report.mismatches.push({ id, message: divergenceMessage(history, divergence) });
  }
  return report;
}

/** Resolves once no job of `key` (`<function>@<version>`) is pending on the server, within `timeoutMs`. */
export function drainedOf(resonateUrl: string, key: string, timeoutMs = 120_000): () => Promise<void> {
  const search = httpPromiseSearch(resonateUrl);
  return async () => {
    await waitFor(async () => ((await pendingVersions(search)).get(key)?.length ?? 0) === 0 || undefined, {
      timeout: timeoutMs,
      interval: 250,
      message: `no job of ${key} pending`,
    });
  };
}
