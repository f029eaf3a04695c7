import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { NOTHING_BROKEN, summaryLine } from "../../harness/chaos/invariants.ts";
import { probeCount, readProbes } from "../../harness/chaos/probe-log.ts";
import { CHAOS_SECRET, type ChaosStack, startChaosStack } from "../../harness/chaos/stack.ts";
import { getPromise, getTask, sendWebhook, waitFor } from "../../harness/index.ts";
import { TEST_API_AUTH } from "../support/api-auth.ts";
import { answers200, call, jobDone, requestQuote } from "../support/http.ts";
import { E2E_TIMEOUT } from "../support/processes.ts";

let stack: ChaosStack;
const accepted: string[] = [];
let kills = 0;

beforeAll(async () => {
  stack = await startChaosStack({
    apiAuth: TEST_API_AUTH,
    env: { SHIP_COOLING_OFF_MS: "4000", PRICING_DELAY_MS: "1500" },
  });
}, E2E_TIMEOUT);

afterAll(async () => {
  const report = await stack.report(accepted);
  console.log(summaryLine("restarts", report, kills));
  await stack.stop();
  expect(report).toMatchObject(NOTHING_BROKEN);
}, E2E_TIMEOUT);

const approve = (orderId: string) =>
  sendWebhook({
    url: `${stack.api.url}/webhooks/approval/${orderId}`,
    secret: CHAOS_SECRET,
    body: JSON.stringify({ approved: true, approver: "restart-test" }),
    retries: 60,
    backoffMs: 100,
  });

const done = (id: string) => jobDone(stack.api, id, 40_000);

describe("the Resonate server killed and restarted under suspended and running workflows", () => {
  test(
    "workflows waiting on a webhook, sleeping, and in the middle of an RPC all complete",
    async () => {
      // Waiting on its approval webhook.
      await call(stack.api, "POST", "/orders/rs-waiting/approve-and-ship");
      accepted.push("ship:rs-waiting");
      // Approved, now in its durable cooling-off sleep.
      await call(stack.api, "POST", "/orders/rs-sleeping/approve-and-ship");
      accepted.push("ship:rs-sleeping");
      expect((await approve("rs-sleeping")).at(-1)?.status).toBe(200);
      // A quote whose pricing step is running (the API → pricing RPC is open).
      const quote = await requestQuote(stack.api, { sku: "sku-31", qty: 2 }, 0.2);
      expect(quote.status).toBe(202);
      const quoteId = String(quote.body.quote_id);
      // An order somewhere in its run.
      await call(stack.api, "POST", "/jobs", { order_id: "rs-order", items: [{ sku: "sku-32", qty: 1 }] });
      accepted.push("order:rs-order");

      await waitFor(
        async () => (await getTask(stack.server.url, "ship:rs-sleeping"))?.state === "suspended",
        {
          message: "sleeping workflow suspended",
        },
      );
      await waitFor(
        async () =>
          // approve_then_ship's children in order: approval promise (.0), register_callback (.1), cooling-off sleep (.2).
          (await getPromise(stack.server.url, "ship:rs-sleeping.2"))?.tags["resonate:timer"] === "true",
        {
          message: "cooling-off timer created",
        },
      );
      await waitFor(() => probeCount(readProbes(stack.probeLog), "pricing.delay", quoteId) === 1, {
        message: "pricing step running",
      });

      await stack.server.kill();
      kills++;
      await stack.server.restart();

      expect((await approve("rs-waiting")).at(-1)?.status).toBe(200);
      expect((await done("ship:rs-waiting")).result).toMatchObject({ status: "shipped" });
      expect((await done("ship:rs-sleeping")).result).toMatchObject({ status: "shipped" });
      expect((await done("order:rs-order")).result).toMatchObject({ status: "completed" });
      const priced = (await answers200(stack.api, `/price-quote/${quoteId}`, 40_000)).body;
      expect(priced).toMatchObject({ sku: "sku-31", qty: 2 });
      expect(stack.effects("rs-order")).toEqual({ charges: 1, shipments: 1, rows: 1 });
      expect(stack.effects("rs-sleeping").shipments).toBe(1);
    },
    E2E_TIMEOUT,
  );
});

describe("the API killed right after it answered 202", () => {
  test(
    "the job still completes and a restarted API shows it",
    async () => {
      const res = await call(stack.api, "POST", "/jobs", {
        order_id: "api-killed",
        items: [{ sku: "sku-33", qty: 1 }],
      });
      expect(res.status).toBe(202);
      accepted.push("order:api-killed");
      await stack.api.kill();
      kills++;
      await stack.api.restart();
      expect((await done("order:api-killed")).result).toMatchObject({
        order_id: "api-killed",
        status: "completed",
      });
      expect(stack.effects("api-killed")).toEqual({ charges: 1, shipments: 1, rows: 1 });
    },
    E2E_TIMEOUT,
  );
});
