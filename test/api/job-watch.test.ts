/**
 * Waiting on a job and streaming its changes, in process: `Prefer: wait`
 * answers as soon as the job settles, or as it is once the wait (capped)
 * runs out, saying so in `Preference-Applied`; `GET /jobs/:id/events` sends
 * each status once, in order, resumes after `Last-Event-ID`, ends when the
 * job settles and leaves nothing waiting when the client goes away. Listing
 * needs a server that searches; the in-process network does not (501).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { waitFor } from "../../harness/index.ts";
import type { Deps } from "../../src/deps.ts";
import { untilSettled } from "../../src/resonate/settled.ts";
import { bearer } from "../support/api-auth.ts";
import { startColocatedApi } from "../support/colocated-api.ts";
import { readReply } from "../support/http.ts";
import { signedHeaders } from "../support/secrets.ts";
import { events } from "../support/sse.ts";

let api: Awaited<ReturnType<typeof startColocatedApi>>;
beforeAll(async () => {
  api = await startColocatedApi({ JOB_MAX_WAIT_MS: "5000" });
});
afterAll(() => api?.stop());

const run = () => crypto.randomUUID().slice(0, 8);

/** Starts approve-and-ship for a fresh order; its job waits for the approval webhook. */
async function heldOrder(): Promise<string> {
  const orderId = `watch-${run()}`;
  expect((await api.request("POST", `/orders/${orderId}/approve-and-ship`)).status).toBe(202);
  return orderId;
}

/** Sends the signed approval until the workflow waits for it (503 before) and it is taken. */
async function approve(orderId: string) {
  const body = JSON.stringify({ approved: true, approver: "watch@example.com" });
  await waitFor(
    async () =>
      (await api.request("POST", `/webhooks/approval/${orderId}`, body, signedHeaders(body))).status ===
        200 || undefined,
    { message: `approval of ${orderId} taken` },
  );
}

describe("GET /jobs/:id with Prefer: wait", () => {
  test("answers as soon as the job settles, with Preference-Applied", async () => {
    const orderId = await heldOrder();
    const waiting = api.request("GET", `/jobs/ship:${orderId}`, undefined, { prefer: "wait=5" });
    await approve(orderId);
    const res = await readReply(await waiting);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      job_id: `ship:${orderId}`,
      status: "done",
      result: { status: "shipped" },
    });
    expect(res.headers.get("preference-applied")).toBe("wait=5");
  });

  test("once the wait runs out, the job as it is: running", async () => {
    const orderId = await heldOrder();
    const res = await readReply(
      await api.request("GET", `/jobs/ship:${orderId}`, undefined, { prefer: "wait=0.2" }),
    );
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      job_id: `ship:${orderId}`,
      status: "running",
      started_at: expect.any(String),
    });
    expect(res.headers.get("preference-applied")).toBe("wait=0.2");
  });

  test("a wait longer than JOB_MAX_WAIT_MS is cut to it, and says so", async () => {
    await using short = await startColocatedApi({ JOB_MAX_WAIT_MS: "300" });
    const orderId = `watch-cap-${run()}`;
    expect((await short.request("POST", `/orders/${orderId}/approve-and-ship`)).status).toBe(202);
    const res = await short.request("GET", `/jobs/ship:${orderId}`, undefined, { prefer: "wait=600" });
    expect(res.status).toBe(200);
    expect(res.headers.get("preference-applied")).toBe("wait=0.3");
  });

  test("without Prefer, or with a settled job, it answers at once and applies nothing", async () => {
    const orderId = await heldOrder();
    const now = await api.request("GET", `/jobs/ship:${orderId}`);
    expect(now.headers.get("preference-applied")).toBeNull();
    expect(((await now.json()) as { status: string }).status).toBe("running");
  });

  test("a client that goes away ends its wait at once", async () => {
    const orderId = await heldOrder();
    const client = new AbortController();
    const authorization = await bearer("tester", { scope: "operator" });
    const waiting = api.app.handle(
      new Request(`http://api.test/jobs/ship:${orderId}`, {
        headers: { prefer: "wait=5", authorization },
        signal: client.signal,
      }),
    );
    client.abort();
    const res = await waiting;
    expect(res.status).toBe(200);
    expect(((await res.json()) as { status: string }).status).toBe("running");
  });

  test("another caller's job is a 404 at once, whatever the wait", async () => {
    const orderId = await heldOrder();
    const res = await api.request("GET", `/jobs/ship:${orderId}`, undefined, {
      prefer: "wait=5",
      authorization: await bearer("stranger"),
    });
    expect(res.status).toBe(404);
  });
});

describe("GET /jobs/:id/events", () => {
  test("running, then the settled job, each once with its id and when the job started; the stream ends with the job", async () => {
    const orderId = await heldOrder();
    const { started_at } = (await (await api.request("GET", `/jobs/ship:${orderId}`)).json()) as {
      started_at: string;
    };
    expect(Date.parse(started_at)).toBeGreaterThan(0);
    const res = await api.request("GET", `/jobs/ship:${orderId}/events`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toStartWith("text/event-stream");
    const reading = events(res);
    await approve(orderId);
    const seen = await reading;
    expect(seen).toEqual([
      { id: "1", event: "status", data: { job_id: `ship:${orderId}`, status: "running", started_at } },
      {
        id: "3",
        event: "status",
        data: expect.objectContaining({ job_id: `ship:${orderId}`, status: "done", started_at }),
      },
    ]);
  });

  test("a cancel asked through this API shows as canceling at once, then the job ends canceled", async () => {
    const orderId = await heldOrder();
    const res = await api.request("GET", `/jobs/ship:${orderId}/events`);
    const reading = events(res);
    // Asked with no body at all: a cancel's reason may be left out.
    await waitFor(
      async () => {
        const asked = await api.app.handle(
          new Request(`http://api.test/jobs/ship:${orderId}/cancel`, {
            method: "POST",
            headers: { authorization: await bearer("tester", { scope: "operator" }) },
          }),
        );
        return asked.status === 202 || asked.status === 200 || undefined;
      },
      { message: "cancel asked" },
    );
    const seen = await reading;
    expect(seen.map((e) => [e.id, e.data.status])).toEqual([
      ["1", "running"],
      ["2", "canceling"],
      ["3", "canceled"],
    ]);
    expect(api.deps.jobSignals.size).toBe(0);
  });

  test("resumed with Last-Event-ID, only what came after it; after the last, nothing", async () => {
    const orderId = await heldOrder();
    const first = await events(
      await api.request("GET", `/jobs/ship:${orderId}/events`),
      (seen) => seen.length === 1,
    );
    expect(first.map((e) => e.id)).toEqual(["1"]);
    await approve(orderId);
    const resumed = await events(
      await api.request("GET", `/jobs/ship:${orderId}/events`, undefined, { "last-event-id": "1" }),
    );
    expect(resumed.map((e) => [e.id, e.data.status])).toEqual([["3", "done"]]);
    // Nothing more will come: a 204, which tells an EventSource to stop reconnecting.
    const after = await api.request("GET", `/jobs/ship:${orderId}/events`, undefined, {
      "last-event-id": "3",
    });
    expect(after.status).toBe(204);
    expect(await after.text()).toBe("");
  });

  test("a stream ends after JOB_EVENTS_MAX_MS; reconnected with Last-Event-ID it goes on from there", async () => {
    await using short = await startColocatedApi({ JOB_EVENTS_MAX_MS: "300" });
    const orderId = `watch-max-${run()}`;
    expect((await short.request("POST", `/orders/${orderId}/approve-and-ship`)).status).toBe(202);
    const first = await events(await short.request("GET", `/jobs/ship:${orderId}/events`));
    expect(first.map((e) => e.id)).toEqual(["1"]);
    const again = await events(
      await short.request("GET", `/jobs/ship:${orderId}/events`, undefined, { "last-event-id": "1" }),
    );
    expect(again).toEqual([]);
    expect(short.deps.jobSignals.size).toBe(0);
  });

  test("a client that leaves the stream leaves nothing waiting", async () => {
    const orderId = await heldOrder();
    const seen = await events(
      await api.request("GET", `/jobs/ship:${orderId}/events`),
      (s) => s.length === 1,
    );
    expect(seen).toHaveLength(1);
    await waitFor(() => api.deps.jobSignals.size === 0 || undefined, { message: "no stream left waiting" });
  });

  test("an unknown job, or another caller's, is a 404 before any stream starts", async () => {
    const orderId = await heldOrder();
    for (const [path, authorization] of [
      ["/jobs/order:never-started/events", undefined],
      [`/jobs/ship:${orderId}/events`, await bearer("stranger")],
    ] as const) {
      const res = await readReply(
        await api.request("GET", path, undefined, authorization ? { authorization } : {}),
      );
      expect(res.status).toBe(404);
      expect(res.body).toMatchObject({ error: { code: "not_found" } });
    }
  });
});

describe("GET /jobs", () => {
  test("on a Resonate network that cannot search (the in-process one): 501 with the error shape", async () => {
    const res = await readReply(await api.request("GET", "/jobs"));
    expect(res.status).toBe(501);
    expect(res.body).toMatchObject({ error: { code: "not_implemented" } });
  });

  test.each([
    ["state=paused", "state"],
    ["kind=refund", "kind"],
    ["limit=0", "an integer from 1 to 100, got 0"],
    ["limit=101", "an integer from 1 to 100, got 101"],
    ["limit=ten", "limit"],
    ["cursor=not%20a%20cursor!", "cursor"],
  ])("a bad query (%s) is a 422 saying %s", async (query, field) => {
    const res = await readReply(await api.request("GET", `/jobs?${query}`));
    expect(res.status).toBe(422);
    expect(JSON.stringify(res.body)).toContain(field);
  });

  test("a cursor this API did not hand out is a 400", async () => {
    const res = await readReply(await api.request("GET", "/jobs?cursor=bm90LWEtY3Vyc29y"));
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: { code: "invalid_cursor" } });
  });
});

describe("untilSettled", () => {
  /** Deps whose Resonate client hands out a promise's handle only when `release` is called. */
  function slowHandles() {
    let release: () => void = () => {};
    const fetched = new Promise<void>((resolve) => {
      release = resolve;
    });
    const never = new Promise<never>(() => {});
    const deps = {
      resonate: { get: async () => fetched.then(() => ({ result: () => never })) },
    } as unknown as Deps;
    return { deps, release };
  }

  test("a signal that aborts while the handle is still being fetched ends the wait", async () => {
    const { deps, release } = slowHandles();
    const abort = new AbortController();
    const waiting = untilSettled(deps, "p", abort.signal);
    abort.abort();
    await waiting;
    release();
  });

  test("so does a wake that comes while the handle is still being fetched", async () => {
    const { deps, release } = slowHandles();
    let wake: () => void = () => {};
    const woken = new Promise<void>((resolve) => {
      wake = resolve;
    });
    const waiting = untilSettled(deps, "p", new AbortController().signal, woken);
    wake();
    await waiting;
    release();
  });

  test("without either, it waits for the promise", async () => {
    const { deps, release } = slowHandles();
    const abort = new AbortController();
    let ended = false;
    const waiting = untilSettled(deps, "p", abort.signal).then(() => {
      ended = true;
    });
    release();
    await Bun.sleep(0);
    expect(ended).toBe(false);
    abort.abort();
    await waiting;
    expect(ended).toBe(true);
  });
});
