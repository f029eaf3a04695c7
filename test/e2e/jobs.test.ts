/**
 * Jobs a client can list, wait on and follow, across real processes: `GET
 * /jobs` pages through the caller's jobs newest first (an operator's
 * through everyone's), with no job twice and none missed, filtered by
 * state and kind, through the Resonate server's `promise.search` over one
 * entry per job; `Prefer: wait` and the event stream see a job settle
 * through the API's message stream. Runs on the real server too
 * (`RESONATE_BIN`).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  decodeValue,
  getPromise,
  type PromiseRecord,
  protocolCall,
  sendWebhook,
  waitFor,
} from "../../harness/index.ts";
import { entryId, entryOf, entryTags } from "../../src/jobs/entries.ts";
import { bearer } from "../support/api-auth.ts";
import { call, jobDone } from "../support/http.ts";
import { E2E_TIMEOUT } from "../support/processes.ts";
import { TEST_SECRET } from "../support/secrets.ts";
import { type Stack, startStack } from "./stack.ts";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ groups: ["order-workers", "db"] });
}, E2E_TIMEOUT);
afterAll(() => stack?.stop(), E2E_TIMEOUT);

type Page = { jobs: { job_id: string; status: string; started_at?: string }[]; next_cursor?: string };

/** Every page of `GET /jobs?<query>` as `sub` (scopes as given), following next_cursor to the end. */
async function allPages(sub: string, query: string, scope?: string): Promise<Page[]> {
  const authorization = await bearer(sub, scope ? { scope } : {});
  const pages: Page[] = [];
  let cursor: string | undefined;
  do {
    const q = cursor ? `${query}&cursor=${encodeURIComponent(cursor)}` : query;
    const res = await call(stack.api, "GET", `/jobs?${q}`, undefined, { authorization });
    expect(res.status).toBe(200);
    const page = res.body as unknown as Page;
    pages.push(page);
    cursor = page.next_cursor;
  } while (cursor && pages.length < 50);
  return pages;
}
const ids = (pages: Page[]) => pages.flatMap((p) => p.jobs.map((j) => j.job_id));

const approve = (orderId: string) =>
  sendWebhook({
    url: `${stack.api.url}/webhooks/approval/${orderId}`,
    secret: TEST_SECRET,
    body: JSON.stringify({ approved: true, approver: "lister@example.com" }),
    retries: 40,
    backoffMs: 50,
  });

describe("GET /jobs across real processes", () => {
  const run = crypto.randomUUID().slice(0, 6);
  const held = [1, 2, 3].map((i) => `held-${run}-${i}`);
  const orders = [1, 2].map((i) => `list-${run}-${i}`);
  const bobs = `bob-${run}`;

  beforeAll(async () => {
    const alice = { authorization: await bearer("alice") };
    for (const orderId of held)
      expect(
        (await call(stack.api, "POST", `/orders/${orderId}/approve-and-ship`, undefined, alice)).status,
      ).toBe(202);
    for (const orderId of orders) {
      const body = { order_id: orderId, items: [{ sku: "sku-3", qty: 1 }] };
      expect((await call(stack.api, "POST", "/jobs", body, alice)).status).toBe(202);
    }
    const bob = { authorization: await bearer("bob") };
    const body = { order_id: bobs, items: [{ sku: "sku-3", qty: 1 }] };
    expect((await call(stack.api, "POST", "/jobs", body, bob)).status).toBe(202);
    for (const orderId of [...orders, bobs]) await jobDone(stack.api, `order:${orderId}`);
  }, E2E_TIMEOUT);

  test("pages of two hold each of the caller's jobs once, newest first, and the last page has no cursor", async () => {
    const pages = await allPages("alice", "limit=2");
    const started = [...held.map((o) => `ship:${o}`), ...orders.map((o) => `order:${o}`)];
    expect(ids(pages)).toEqual(started.toReversed());
    for (const page of pages) expect(page.jobs.length).toBeLessThanOrEqual(2);
    expect(pages.at(-1)?.next_cursor).toBeUndefined();
  });

  test("each job says when it started, the same in the list and on its own, and the list is in that order", async () => {
    const jobs = (await allPages("alice", "limit=2")).flatMap((page) => page.jobs);
    const times = jobs.map((job) => Date.parse(job.started_at ?? ""));
    expect(times.every((time, i) => i === 0 || time < (times[i - 1] as number))).toBe(true);
    const [newest] = jobs;
    const alone = await call(stack.api, "GET", `/jobs/${newest?.job_id}`, undefined, {
      authorization: await bearer("alice"),
    });
    expect(alone.body).toMatchObject({ job_id: newest?.job_id, started_at: newest?.started_at });
  });

  test("filtered by kind and by state", async () => {
    expect(ids(await allPages("alice", "kind=approval"))).toEqual(held.map((o) => `ship:${o}`).toReversed());
    expect(ids(await allPages("alice", "state=done"))).toEqual(orders.map((o) => `order:${o}`).toReversed());
    expect(ids(await allPages("alice", "state=running&kind=approval")).length).toBe(3);
    expect(ids(await allPages("alice", "state=failed"))).toEqual([]);
  });

  test("another caller sees only their own; an operator sees everyone's", async () => {
    expect(ids(await allPages("bob", "limit=5"))).toEqual([`order:${bobs}`]);
    const all = ids(await allPages("ops", "limit=3", "operator"));
    expect(all).toEqual(expect.arrayContaining([`order:${bobs}`, ...orders.map((o) => `order:${o}`)]));
    expect(new Set(all).size).toBe(all.length);
  });

  test("a cursor is bound to its caller and filters: used otherwise it is a 400", async () => {
    const [first] = await allPages("alice", "limit=1");
    const cursor = encodeURIComponent(first?.next_cursor as string);
    const asBob = await call(stack.api, "GET", `/jobs?limit=1&cursor=${cursor}`, undefined, {
      authorization: await bearer("bob"),
    });
    expect(asBob.status).toBe(400);
    const otherFilter = await call(stack.api, "GET", `/jobs?limit=1&kind=order&cursor=${cursor}`, undefined, {
      authorization: await bearer("alice"),
    });
    expect(otherFilter.status).toBe(400);
  });

  test("an approved job leaves the running list and joins the done one", async () => {
    const [orderId] = held as [string];
    expect((await approve(orderId)).at(-1)?.status).toBe(200);
    await jobDone(stack.api, `ship:${orderId}`);
    expect(ids(await allPages("alice", "state=done&kind=approval"))).toEqual([`ship:${orderId}`]);
    expect(ids(await allPages("alice", "state=running"))).not.toContain(`ship:${orderId}`);
  });
});

describe("the list's entries (src/jobs/entries.ts), one per job", () => {
  const run = crypto.randomUUID().slice(0, 6);
  const owner = `dana-${run}`;
  /** Every entry on the server tagged with `owner`, as `promise.search` pages them. */
  const entries = async () => {
    const reply = await protocolCall<{ promises: PromiseRecord[] }>(stack.server.url, "promise.search", {
      tags: entryTags(undefined, owner),
      limit: 100,
    });
    expect(reply.status).toBe(200);
    return reply.body.data.promises;
  };
  const createEntry = async (jobId: string, startedAt: number, by = owner) => {
    const id = entryId(jobId, startedAt);
    const reply = await protocolCall(stack.server.url, "promise.create", {
      id,
      timeoutAt: Date.now() + 60_000,
      param: { headers: {}, data: "" },
      tags: entryTags("order", by),
    });
    expect(reply.status).toBeLessThan(300);
    return id;
  };

  test("a start retried adds no entry; an entry its root does not name lists nothing and is rejected; one with no root stays pending", async () => {
    const orderId = `entries-${run}`;
    const body = { order_id: orderId, items: [{ sku: "sku-3", qty: 1 }] };
    const dana = { authorization: await bearer(owner) };
    for (let i = 0; i < 2; i++) expect((await call(stack.api, "POST", "/jobs", body, dana)).status).toBe(202);
    await jobDone(stack.api, `order:${orderId}`);
    const [entry, ...more] = await entries();
    expect(more).toEqual([]);
    expect(entryOf(entry?.id as string)?.jobId).toBe(`order:${orderId}`);
    expect((await getPromise(stack.server.url, `order:${orderId}`))?.tags["job:entry"]).toBe(entry?.id);

    // A second start that lost the race to the first, and one cut short before its root.
    const lost = await createEntry(`order:${orderId}`, Date.now() + 1_000);
    const cutShort = await createEntry(`order:never-${run}`, Date.now() + 2_000);
    expect(ids(await allPages(owner, "limit=10"))).toEqual([`order:${orderId}`]);
    expect((await getPromise(stack.server.url, lost))?.state).toBe("rejected");
    expect((await getPromise(stack.server.url, cutShort))?.state).toBe("pending");
    // The job is done: its entry is settled with the job as listed, and state=running no longer finds it.
    const settled = await getPromise(stack.server.url, entry?.id as string);
    expect(settled?.state).toBe("resolved");
    const [listedJob] = (await allPages(owner, "limit=10"))[0]?.jobs ?? [];
    expect(decodeValue(settled?.value)).toEqual(listedJob);
    expect(listedJob).toMatchObject({
      job_id: `order:${orderId}`,
      status: "done",
      result: { status: "completed" },
    });
    expect(ids(await allPages(owner, "state=running"))).toEqual([]);
    expect(ids(await allPages(owner, "state=done"))).toEqual([`order:${orderId}`]);
  });
  test("a settled entry lists the job it keeps, without reading a root", async () => {
    const keeper = `erin-${run}`;
    const job = {
      job_id: `order:kept-${run}`,
      status: "done",
      result: { status: "completed" },
      started_at: new Date().toISOString(),
    };
    // No root: the list can only have it from the entry.
    const id = await createEntry(job.job_id, Date.now(), keeper);
    const settled = await protocolCall(stack.server.url, "promise.settle", {
      id,
      state: "resolved",
      value: { headers: {}, data: Buffer.from(JSON.stringify(job)).toString("base64") },
    });
    expect(settled.status).toBe(200);
    expect((await allPages(keeper, "limit=10")).flatMap((page) => page.jobs)).toEqual([job]);
    expect(ids(await allPages(keeper, "state=running"))).toEqual([]);
  });
});

describe("waiting on a job across real processes", () => {
  test("Prefer: wait answers when the approval webhook settles the job, through the API's message stream", async () => {
    const orderId = `wait-${crypto.randomUUID().slice(0, 6)}`;
    expect((await call(stack.api, "POST", `/orders/${orderId}/approve-and-ship`)).status).toBe(202);
    const waiting = call(stack.api, "GET", `/jobs/ship:${orderId}`, undefined, { prefer: "wait=20" });
    expect((await approve(orderId)).at(-1)?.status).toBe(200);
    const res = await waiting;
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: "done", result: { status: "shipped" } });
    expect(res.headers.get("preference-applied")).toBe("wait=20");
  });

  test("the event stream ends with the settled job", async () => {
    const orderId = `events-${crypto.randomUUID().slice(0, 6)}`;
    expect((await call(stack.api, "POST", `/orders/${orderId}/approve-and-ship`)).status).toBe(202);
    const authorization = await bearer("tester", { scope: "operator" });
    const res = await fetch(`${stack.api.url}/jobs/ship:${orderId}/events`, { headers: { authorization } });
    expect(res.status).toBe(200);
    const text = res.text();
    await waitFor(async () => (await approve(orderId)).at(-1)?.status === 200 || undefined, {
      message: "approved",
    });
    const body = await text;
    expect(body).toContain('id: 1\nevent: status\ndata: {"job_id":"ship:');
    expect(body).toMatch(/id: 3\nevent: status\ndata: \{"job_id":"ship:[^"]+","status":"done"/);
  });
});
