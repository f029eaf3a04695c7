/**
 * Results pushed to the API (`RESONATE_PUSH_HOST`): the Resonate server
 * POSTs each result to the waiting API process's own listener rather than
 * writing it to that process's message stream. On whichever server the run
 * uses (ours, or the real one in `RESONATE_BIN`).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type ApiProcess, type System, spawnApi, startSystem, waitFor } from "../../harness/index.ts";
import { TEST_API_AUTH } from "../support/api-auth.ts";
import { call, jobDone, requestQuote } from "../support/http.ts";
import { E2E_TIMEOUT, runId } from "../support/processes.ts";
import { TEST_SECRET } from "../support/secrets.ts";

let system: System;

beforeAll(async () => {
  system = await startSystem({
    push: true,
    server: { metrics: true },
    apiAuth: TEST_API_AUTH,
    webhookSecret: TEST_SECRET,
    env: { QUOTE_VALIDITY_MS: "86400000" },
  });
}, E2E_TIMEOUT);

afterAll(async () => {
  await system?.stop();
}, E2E_TIMEOUT);

/** The API's `resonate_pushes_total` by outcome, from its `/metrics`. */
async function pushes(api: { url: string }): Promise<Record<string, number>> {
  const raw = await (await fetch(`${api.url}/metrics`)).text();
  return Object.fromEntries(
    [...raw.matchAll(/^resonate_pushes_total\{outcome="(\w+)"\} (\d+)$/gm)].map((m) => [m[1], Number(m[2])]),
  );
}

/** The server's failed deliveries so far (`resonate_deliveries_total{status="error"}`, on both servers). */
async function failedDeliveries(): Promise<number> {
  const raw = await (await fetch(system.server?.metricsUrl as string)).text();
  return Number(/^resonate_deliveries_total\{status="error"\} (\d+)/m.exec(raw)?.[1] ?? 0);
}

/** An API process of this system with push on, on a port of its own. */
const pushingApi = (extra: Record<string, string> = {}): Promise<ApiProcess> =>
  spawnApi({
    env: {
      ...system.env,
      ...TEST_API_AUTH.env,
      RESONATE_PUSH_HOST: "127.0.0.1",
      RESONATE_PUSH_TOKEN: system.server?.pushToken as string,
      PORT: "0",
      ...extra,
    },
  });

describe("results pushed to the API", () => {
  test(
    "a quote is answered 200 with its price, its result having come by push",
    async () => {
      const before = (await pushes(system.api)).delivered ?? 0;
      const quote = await requestQuote(
        system.api,
        { sku: "sku-1", qty: 3, customer_id: `push-${runId()}` },
        10,
      );
      expect(quote.status).toBe(200);
      expect(quote.body.price_cents).toBeNumber();
      expect((await pushes(system.api)).delivered).toBeGreaterThan(before);
    },
    E2E_TIMEOUT,
  );

  test(
    "on Deno as on Bun: an API process on Deno gets its quote's result by push",
    async () => {
      await using deno = await spawnApi({
        runtime: "deno",
        env: {
          ...system.env,
          ...TEST_API_AUTH.env,
          RESONATE_PUSH_HOST: "127.0.0.1",
          RESONATE_PUSH_TOKEN: system.server?.pushToken as string,
        },
      });
      const quote = await requestQuote(deno, { sku: "sku-5", qty: 2, customer_id: `deno-${runId()}` }, 10);
      expect(quote.status).toBe(200);
      expect((await pushes(deno)).delivered).toBeGreaterThanOrEqual(1);
    },
    E2E_TIMEOUT,
  );

  test(
    "an order job runs to its end, each result it waits for pushed",
    async () => {
      const orderId = `push-${runId()}`;
      const res = await call(system.api, "POST", "/jobs", {
        order_id: orderId,
        items: [{ sku: "sku-2", qty: 1 }],
      });
      expect(res.status).toBe(202);
      const job = await jobDone(system.api, `order:${orderId}`);
      expect(job.status).toBe("done");
    },
    E2E_TIMEOUT,
  );

  test(
    "an API process killed with quotes waiting: the server's pushes to it fail, and another process's results still come within the deadline",
    async () => {
      const tag = runId();
      // Its quotes take 1.5 s, past the route's 1 s deadline: it answers 202 and still listens for them.
      const doomed = await pushingApi({ PRICING_DELAY_MS: "1500" });
      const other = await pushingApi();
      try {
        const waiting = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            requestQuote(doomed, { sku: "sku-3", qty: i + 1, customer_id: `doomed-${tag}` }, 1),
          ),
        );
        expect(waiting.map((r) => r.status)).toEqual(Array(20).fill(202));
        const failedBefore = await failedDeliveries();
        doomed.kill("SIGKILL");
        await doomed.exited;
        // The server pushes the 20 results to a port nobody listens on now, and drops each.
        await waitFor(async () => (await failedDeliveries()) >= failedBefore + 20, {
          timeout: 20_000,
          message: "20 failed pushes counted",
        });
        const answered = await Promise.all(
          Array.from({ length: 10 }, (_, i) =>
            requestQuote(other, { sku: "sku-4", qty: i + 1, customer_id: `other-${tag}` }, 1),
          ),
        );
        expect(answered.map((r) => r.status)).toEqual(Array(10).fill(200));
        // The doomed process's quotes finished all the same, and any API process answers them.
        const first = waiting[0]?.body.quote_id as string;
        const done = await waitFor(
          async () => {
            const res = await call(other, "GET", `/price-quote/${first}`);
            return res.status === 200 ? res : undefined;
          },
          { timeout: 20_000, message: `${first} finished` },
        );
        expect(done.body.price_cents).toBeNumber();
      } finally {
        await Promise.all([doomed.stop(), other.stop()]);
      }
    },
    E2E_TIMEOUT,
  );
});
