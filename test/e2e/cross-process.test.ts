/**
 * Every route answers the same whichever API process a request reaches.
 * Two API processes (A and B, each on a port of its own so a test can pick
 * one; behind a load balancer or on one port they are the same two) share
 * one Resonate server and the workers. Each test names one piece of state
 * an API process keeps in memory and proves what makes it safe with
 * several processes.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  type ApiProcess,
  type System,
  sendWebhook,
  spawnApi,
  startSystem,
  waitFor,
} from "../../harness/index.ts";
import { CANCEL_POLL_MS } from "../../src/deps.ts";
import { defaultAuthorization, TEST_API_AUTH, TEST_CALLER } from "../support/api-auth.ts";
import { call, requestQuote } from "../support/http.ts";
import { E2E_TIMEOUT, runId } from "../support/processes.ts";
import { TEST_SECRET } from "../support/secrets.ts";

/** How long a quote takes to compute here: longer than the route's deadline, so quotes wait. */
const PRICING_DELAY_MS = 1_500;

let system: System;
let a: ApiProcess;
let b: ApiProcess;

beforeAll(async () => {
  system = await startSystem({
    apiAuth: TEST_API_AUTH,
    webhookSecret: TEST_SECRET,
    // A paid order waits for its payment webhook long enough to be seen canceling.
    sandbox: { webhookDelayMs: 20_000 },
  });
  const env = {
    ...system.env,
    ...TEST_API_AUTH.env,
    PORT: "0",
    QUOTE_MAX_WAITING: "1",
    METRICS_PORT: "0",
    PRICING_DELAY_MS: String(PRICING_DELAY_MS),
    // A day: two identical requests a few seconds apart share one validity window (and so one quote).
    QUOTE_VALIDITY_MS: "86400000",
  };
  [a, b] = await Promise.all([spawnApi({ env }), spawnApi({ env })]);
}, E2E_TIMEOUT);

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await system?.stop();
}, E2E_TIMEOUT);

/** Delivers an approval webhook, retried while the workflow does not wait for it yet (503); `retries: 0`: once. */
const approval = (api: ApiProcess, orderId: string, id: string, approved = true, retries = 50) =>
  sendWebhook({
    url: `${api.url}/webhooks/approval/${orderId}`,
    secret: TEST_SECRET,
    id,
    body: JSON.stringify({ approved, approver: "cross@example.com" }),
    retries,
    backoffMs: 100,
  });

describe("process-local state of an API process, with two processes", () => {
  test(
    "the results a process awaits (the SDK's listeners, by the process's own Resonate pid): B waits for a job A started",
    async () => {
      expect(a.resonatePid).not.toBe(b.resonatePid);
      const orderId = `xp-wait-${runId()}`;
      expect((await call(a, "POST", `/orders/${orderId}/approve-and-ship`)).status).toBe(202);
      const waiting = call(b, "GET", `/jobs/ship:${orderId}`, undefined, { prefer: "wait=20" });
      expect((await approval(a, orderId, `msg_${orderId}`)).at(-1)?.status).toBe(200);
      expect((await waiting).body).toMatchObject({ job_id: `ship:${orderId}`, status: "done" });
    },
    E2E_TIMEOUT,
  );

  test(
    `the cancel wake-ups of event streams (JobSignals): a cancel through B shows as canceling on A's stream within ${CANCEL_POLL_MS} ms and a round trip`,
    async () => {
      const orderId = `xp-cancel-${runId()}`;
      const submitted = await call(a, "POST", "/jobs", {
        order_id: orderId,
        items: [{ sku: "sku-1", qty: 1 }],
      });
      expect(submitted.status).toBe(202);
      const jobId = `order:${orderId}`;
      // The order waits for its payment webhook (20 s here): it stays canceling until then.
      await waitFor(() => (system.sandbox?.payment.chargesFor(orderId).length ?? 0) > 0 || undefined, {
        message: "the order charged",
      });
      const path = `/jobs/${jobId}/events`;
      const stream = await fetch(`${a.url}${path}`, {
        headers: { authorization: await defaultAuthorization(path) },
      });
      const reader = stream.body?.getReader() as ReadableStreamDefaultReader<Uint8Array>;
      const decoder = new TextDecoder();
      let text = "";
      while (!text.includes("id: 1\n")) text += decoder.decode((await reader.read()).value);
      const asked = await call(b, "POST", `/jobs/${jobId}/cancel`, { reason: "cross-process" });
      expect(asked.body).toEqual({ job_id: jobId, status: "canceling" });
      const cancelAt = Date.now();
      while (!text.includes("id: 2\n")) text += decoder.decode((await reader.read()).value);
      const seenAfterMs = Date.now() - cancelAt;
      expect(text).toContain(`"status":"canceling"`);
      expect(text).not.toContain("id: 3\n");
      expect(seenAfterMs).toBeLessThan(CANCEL_POLL_MS + 1_500);
      await reader.cancel();
    },
    E2E_TIMEOUT,
  );

  test(
    "the cache of finished quotes (QuoteCache): it holds only settled quotes, under an id every process computes alike",
    async () => {
      const body = { sku: "sku-7", qty: 9, customer_id: `xp-${runId()}` };
      const first = await requestQuote(a, body, 10);
      expect(first.status).toBe(200);
      const second = await requestQuote(b, body, 10);
      expect(second).toEqual({ ...second, status: 200, body: first.body });
    },
    E2E_TIMEOUT,
  );

  test(
    "the approval promise ids by order (approvalIds): facts that never change once the workflow recorded them, so a webhook may reach either process",
    async () => {
      const orderId = `xp-approve-${runId()}`;
      expect((await call(a, "POST", `/orders/${orderId}/approve-and-ship`)).status).toBe(202);
      const id = `msg_${orderId}`;
      const first = (await approval(b, orderId, id)).at(-1);
      expect(first?.status).toBe(200);
      expect(JSON.parse(first?.body ?? "{}")).toMatchObject({ duplicate: false });
      // The same delivery again (a sender's retry) gets the same answer; another delivery that agrees is a duplicate.
      const retried = (await approval(a, orderId, id)).at(-1);
      expect({ status: retried?.status, body: retried?.body }).toEqual({ status: 200, body: first?.body });
      const another = (await approval(a, orderId, `${id}_2`)).at(-1);
      expect(JSON.parse(another?.body ?? "{}")).toMatchObject({ duplicate: true });
      const contradiction = (await approval(a, orderId, `${id}_no`, false, 0)).at(-1);
      expect(contradiction?.status).toBe(409);
    },
    E2E_TIMEOUT,
  );

  test(
    "the start clock of list entries (startClock): each process's own, by the wall clock, so GET /jobs lists newest first through either",
    async () => {
      const first = `xp-list-${runId()}`;
      const second = `xp-list-${runId()}`;
      expect((await call(a, "POST", `/orders/${first}/approve-and-ship`)).status).toBe(202);
      expect((await call(b, "POST", `/orders/${second}/approve-and-ship`)).status).toBe(202);
      const fromA = await call(a, "GET", "/jobs?kind=approval&limit=2");
      const fromB = await call(b, "GET", "/jobs?kind=approval&limit=2");
      const ids = (page: typeof fromA) => (page.body.jobs as { job_id: string }[]).map((j) => j.job_id);
      expect(ids(fromA)).toEqual([`ship:${second}`, `ship:${first}`]);
      expect(ids(fromB)).toEqual(ids(fromA));
    },
    E2E_TIMEOUT,
  );

  test(
    "the caps on waiting quotes (QUOTE_MAX_WAITING) and requests in flight: per process, so N processes take N times as many",
    async () => {
      const tag = runId();
      const waiting = requestQuote(a, { sku: "sku-7", qty: 1, customer_id: `cap-${tag}` }, 10);
      await waitFor(
        async () => {
          const text = await (await fetch(`${a.url}/metrics`)).text();
          return /^http_requests_in_flight [2-9]/m.test(text) || undefined;
        },
        { message: "A's one quote waits" },
      );
      const refused = await requestQuote(a, { sku: "sku-7", qty: 2, customer_id: `cap-${tag}` }, 10);
      expect(refused.status).toBe(503);
      expect((refused.body.error as { code: string }).code).toBe("overloaded");
      const elsewhere = await requestQuote(b, { sku: "sku-7", qty: 2, customer_id: `cap-${tag}` }, 10);
      expect(elsewhere.status).toBe(200);
      expect((await waiting).status).toBe(200);
    },
    E2E_TIMEOUT,
  );

  test(
    "nothing of an idempotent checkout is kept in a process: the same Idempotency-Key through either answers the same",
    async () => {
      const user = TEST_CALLER;
      const key = `xp-${runId()}`;
      const cart = { cart: [{ sku: "sku-3", qty: 2 }] };
      const first = await call(a, "POST", `/users/${user}/orders`, cart, { "idempotency-key": key });
      expect(first.status).toBe(201);
      const again = await call(b, "POST", `/users/${user}/orders`, cart, { "idempotency-key": key });
      expect({ status: again.status, body: again.body }).toEqual({ status: 201, body: first.body });
      const other = await call(
        b,
        "POST",
        `/users/${user}/orders`,
        { cart: [{ sku: "sku-4", qty: 1 }] },
        {
          "idempotency-key": key,
        },
      );
      expect(other.status).toBe(422);
    },
    E2E_TIMEOUT,
  );

  test("the metrics (a registry per process): each process's scrape names its own Resonate pid, on its port and on its own metrics port", async () => {
    const pidAt = async (url: string) =>
      /^api_process_info\{pid="([^"]+)"\} 1$/m.exec(await (await fetch(url)).text())?.[1];
    for (const api of [a, b]) {
      expect(await pidAt(`${api.url}/metrics`)).toBe(api.resonatePid);
      expect(api.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      expect(api.metricsUrl).not.toStartWith(api.url);
      expect(await pidAt(api.metricsUrl as string)).toBe(api.resonatePid);
    }
    expect((await fetch(new URL("/jobs", a.metricsUrl))).status).toBe(404);
  });
});
