/**
 * What an API process does once it begins to stop (SIGTERM), in process:
 * readiness answers 503 `draining`, waits answer at once with things as
 * they are (a job with `Prefer: wait`, a quote, a checkout), and each open
 * job event stream gets a last `reconnect` event and ends. The process
 * itself (stops listening, exits within the grace, a second signal) is
 * tried in test/e2e/api-processes.test.ts.
 */
import { describe, expect, test } from "bun:test";
import { waitFor } from "../../harness/index.ts";
import { RECONNECT_EVENT } from "../../src/jobs/watch.ts";
import { startColocatedApi } from "../support/colocated-api.ts";
import { readReply } from "../support/http.ts";

const run = () => crypto.randomUUID().slice(0, 8);

/** A co-located API and the switch that begins its stop. */
async function drainable(env: Record<string, string> = {}) {
  const draining = new AbortController();
  const api = await startColocatedApi({ JOB_MAX_WAIT_MS: "30000", ...env }, { draining: draining.signal });
  return Object.assign(api, { drain: () => draining.abort() });
}

/** Starts approve-and-ship for a fresh order; its job waits for an approval that never comes. */
async function heldJob(api: Awaited<ReturnType<typeof drainable>>): Promise<string> {
  const orderId = `drain-${run()}`;
  expect((await api.request("POST", `/orders/${orderId}/approve-and-ship`)).status).toBe(202);
  return `ship:${orderId}`;
}

describe("an API process that begins to stop", () => {
  test("readiness turns to 503 draining, with Retry-After; liveness stays ok; every answer says Connection: close", async () => {
    await using api = await drainable();
    const before = await api.request("GET", "/readyz");
    expect((await readReply(before)).body).toEqual({ status: "ready" });
    expect(before.headers.get("connection")).toBeNull();
    api.drain();
    const ready = await readReply(await api.request("GET", "/readyz"));
    expect(ready.status).toBe(503);
    expect(ready.headers.get("retry-after")).toBe("1");
    expect(ready.body).toEqual({
      error: { code: "draining", message: "this API process is stopping; the others take new requests" },
    });
    expect(ready.headers.get("connection")).toBe("close");
    const live = await api.request("GET", "/healthz");
    expect((await readReply(live)).body).toEqual({ status: "ok" });
    expect(live.headers.get("connection")).toBe("close");
  });

  test("a Prefer: wait on a running job answers at once with the job as it is", async () => {
    await using api = await drainable();
    const jobId = await heldJob(api);
    const asked = Date.now();
    const waiting = api.request("GET", `/jobs/${jobId}`, undefined, { prefer: "wait=30" });
    api.drain();
    const res = await readReply(await waiting);
    expect(Date.now() - asked).toBeLessThan(10_000);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ job_id: jobId, status: "running", started_at: expect.any(String) });
  });

  test("an open event stream gets a reconnect event with retry, after what it had, and ends", async () => {
    await using api = await drainable();
    const jobId = await heldJob(api);
    const res = await api.request("GET", `/jobs/${jobId}/events`);
    expect(res.status).toBe(200);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let text = "";
    await waitFor(
      async () => {
        const { value } = await reader.read();
        text += decoder.decode(value, { stream: true });
        return text.includes("id: 1\n") || undefined;
      },
      { message: "the stream's first event" },
    );
    api.drain();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    expect(text).toEndWith(RECONNECT_EVENT);
    expect(RECONNECT_EVENT).toBe(
      'event: reconnect\nretry: 1000\ndata: {"reason":"draining","retry_ms":1000}\n\n',
    );
    // Nothing after `running`: the client reconnects with Last-Event-ID 1 and misses nothing.
    expect(text.match(/^id: \d+$/gm)).toEqual(["id: 1"]);
    expect(api.deps.jobSignals.size).toBe(0);
    expect(api.deps.jobSignals.polling).toBe(0);
  });

  test("a stream opened once it is stopping sends what there is, then the reconnect event", async () => {
    await using api = await drainable();
    const jobId = await heldJob(api);
    api.drain();
    const res = await api.request("GET", `/jobs/${jobId}/events`, undefined, { "last-event-id": "1" });
    expect(res.status).toBe(200);
    expect(res.headers.get("connection")).toBe("close");
    expect(await res.text()).toBe(`retry: 1000\n\n${RECONNECT_EVENT}`);
  });

  test("a quote still being computed is answered 202 with its Location at once", async () => {
    await using api = await drainable({ PRICING_DELAY_MS: "20000", QUOTE_MAX_WAIT_MS: "30000" });
    const asked = Date.now();
    const waiting = api.request("POST", "/price-quote", { sku: "sku-7", qty: 3 }, { prefer: "wait=30" });
    await waitFor(() => api.quoteGate.waiting === 1 || undefined, { message: "the quote waits" });
    api.drain();
    const res = await readReply(await waiting);
    expect(Date.now() - asked).toBeLessThan(10_000);
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ quote_id: expect.stringMatching(/^quote:/), status: "pending" });
    expect(res.headers.get("location")).toStartWith("/price-quote/quote%3A");
  });
});
