/**
 * The invariant checker finds the jobs `GET /jobs` could not show: a root
 * the API tagged `job` that names no list entry, an entry that does not
 * exist, another job's entry, or one tagged with another owner or kind.
 * Promises written by hand on a Resonate server (ours, or RESONATE_BIN's).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { checkInvariants } from "../../harness/chaos/invariants.ts";
import { protocolCall, type ResonateServer, startResonateServer } from "../../harness/index.ts";
import { entryId, entryTags } from "../../src/jobs/entries.ts";
import { E2E_TIMEOUT, runId } from "../support/processes.ts";

let server: ResonateServer;
beforeAll(async () => {
  server = await startResonateServer();
}, E2E_TIMEOUT);
afterAll(() => server?.stop(), E2E_TIMEOUT);

async function create(id: string, tags: Record<string, string>): Promise<void> {
  const reply = await protocolCall(server.url, "promise.create", {
    id,
    timeoutAt: Date.now() + 60_000,
    param: { headers: {}, data: "" },
    tags,
  });
  expect(reply.status).toBeLessThan(300);
}

test("a job is unlisted unless its root names an entry that lists it with its kind and owner", async () => {
  const run = runId();
  const job = (name: string) => `order:${name}-${run}`;
  const root = (owner: string, entry?: string) => ({
    job: "true",
    "job:kind": "order",
    "job:owner": owner,
    ...(entry && { "job:entry": entry }),
  });
  const started = Date.now();
  const listedEntry = entryId(job("listed"), started);
  await create(listedEntry, entryTags("order", "ann"));
  await create(job("listed"), root("ann", listedEntry));
  await create(job("no-entry"), root("ann"));
  await create(job("entry-missing"), root("ann", entryId(job("entry-missing"), started)));
  await create(job("another-jobs-entry"), root("ann", listedEntry));
  const bobsEntry = entryId(job("other-owner"), started);
  await create(bobsEntry, entryTags("order", "bob"));
  await create(job("other-owner"), root("ann", bobsEntry));
  const approvalEntry = entryId(job("other-kind"), started);
  await create(approvalEntry, entryTags("approval", "ann"));
  await create(job("other-kind"), root("ann", approvalEntry));
  // Not a job (the API did not tag it): nothing to list.
  await create(`quote:${run}`, {});

  const report = await checkInvariants({
    resonateUrl: server.url,
    workflows: [
      job("listed"),
      job("no-entry"),
      job("entry-missing"),
      job("another-jobs-entry"),
      job("other-owner"),
      job("other-kind"),
      `quote:${run}`,
    ],
  });
  expect(report.unlisted_ids.toSorted()).toEqual(
    [
      job("no-entry"),
      job("entry-missing"),
      job("another-jobs-entry"),
      job("other-owner"),
      job("other-kind"),
    ].toSorted(),
  );
  expect(report.unlisted).toBe(5);
});
