import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { crashAt } from "../../harness/chaos/crash-points.ts";
import { NOTHING_BROKEN, summaryLine } from "../../harness/chaos/invariants.ts";
import { probeCount, readProbes } from "../../harness/chaos/probe-log.ts";
import { CHAOS_SECRET, type ChaosStack, startChaosStack } from "../../harness/chaos/stack.ts";
import { PaymentProvider } from "../../harness/fakes/payment.ts";
import { sendWebhook, waitFor } from "../../harness/index.ts";
import { TEST_API_AUTH } from "../support/api-auth.ts";
import { answers200, call, jobDone, requestQuote } from "../support/http.ts";
import { E2E_TIMEOUT } from "../support/processes.ts";

/** The steps of process_order, in the order they run. */
const ORDER_STEPS = [
  "order.validate",
  "db.reserve_stock.before",
  "order.cancel.check",
  "order.charge.before",
  "order.cancel.before",
  "order.ship.before",
  "db.insert_order.before",
];
/** The steps of process_order canceled while it waits for its payment webhook. */
const CANCEL_STEPS = [
  "order.validate",
  "db.reserve_stock.before",
  "order.cancel.check",
  "order.charge.before",
  "order.cancel.before",
  "order.refund.before",
  "db.release_stock.before",
  "db.insert_order.before",
];
const APPROVAL_STEPS = ["db.register_callback.before", "order.ship.before"];
const CHECKOUT_STEPS = [
  "db.query_orders.before",
  "db.get_price.before",
  "business.price.before",
  "db.insert_order.before",
];

/** Where each case's worker dies: the probe, the workflow, and the step the probe is in. */
const ORDER_CASES = [
  ["order.validate", "order.validate"],
  ["db.reserve_stock.before", "db.reserve_stock.before"],
  ["db.reserve_stock.after", "db.reserve_stock.before"],
  ["order.charge.before", "order.charge.before"],
  ["order.charge.after", "order.charge.before"],
  ["order.cancel.check", "order.cancel.check"],
  ["order.cancel.before", "order.cancel.before"],
  ["order.cancel.after", "order.cancel.before"],
  ["order.ship.before", "order.ship.before"],
  ["order.ship.after", "order.ship.before"],
  ["db.insert_order.before", "db.insert_order.before"],
  ["db.insert_order.after", "db.insert_order.before"],
].map(([point, step]) => ({
  point: point as string,
  step: step as string,
  id: `order:cp-${(point as string).replaceAll(".", "-")}`,
}));

/** Where a canceled order's worker dies: deciding on the cancel, refunding, releasing the stock, recording the row. */
const CANCEL_CASES = [
  ["order.cancel.before", "order.cancel.before"],
  ["order.cancel.after", "order.cancel.before"],
  ["order.refund.before", "order.refund.before"],
  ["order.refund.after", "order.refund.before"],
  ["db.release_stock.before", "db.release_stock.before"],
  ["db.release_stock.after", "db.release_stock.before"],
  ["db.insert_order.after", "db.insert_order.before"],
].map(([point, step], i) => ({
  point: point as string,
  step: step as string,
  id: `order:cpx-${(point as string).replaceAll(".", "-")}`,
  // A sku of its own, so its stock says whether this order's reservation went back once.
  sku: `sku-${81 + i}`,
}));

const APPROVAL_CASES = [
  ["db.register_callback.after", "db.register_callback.before"],
  ["order.ship.after", "order.ship.before"],
].map(([point, step]) => ({
  point: point as string,
  step: step as string,
  id: `ship:cpa-${(point as string).replaceAll(".", "-")}`,
}));

const CHECKOUT_CASES = [
  ["db.query_orders.after", "db.query_orders.before"],
  ["business.price.after", "business.price.before"],
  ["db.insert_order.after", "db.insert_order.before"],
].map(([point, step], i) => ({ point: point as string, step: step as string, id: `checkout:cpuser:k${i}` }));

let stack: ChaosStack;
/** The provider's ledger, shared with the workers: to hold an order's webhook back, and to read refunds. */
let payments: PaymentProvider;
const accepted: string[] = [];

beforeAll(async () => {
  stack = await startChaosStack({
    apiAuth: TEST_API_AUTH,
    crashAt: crashAt([
      ...ORDER_CASES,
      ...CANCEL_CASES,
      ...APPROVAL_CASES,
      ...CHECKOUT_CASES,
      { point: "pricing.compute", id: "*" },
    ]),
  });
  payments = new PaymentProvider({
    ledgerPath: stack.paymentLedger,
    webhookUrl: "",
    webhookSecret: CHAOS_SECRET,
  });
}, E2E_TIMEOUT);

afterAll(async () => {
  payments?.close();
  const report = await stack.report(accepted);
  const kills = readProbes(stack.probeLog).filter((p) => p.point === "crash").length;
  console.log(summaryLine("recovery", report, kills));
  await stack.stop();
  expect(report).toMatchObject(NOTHING_BROKEN);
}, E2E_TIMEOUT);

const doneJob = (id: string) => jobDone(stack.api, id);
const canceledJob = (id: string) =>
  waitFor(
    async () => {
      const job = (await call(stack.api, "GET", `/jobs/${id}`)).body;
      return job.status === "canceled" ? job : undefined;
    },
    { timeout: 30_000, message: `${id} canceled` },
  );

/** A sku's stock and an order's row status, from the service database. */
function database(orderId: string, sku: string) {
  const db = new Database(stack.databasePath, { readonly: true });
  try {
    return {
      row: db.query<{ status: string }, [string]>("SELECT status FROM orders WHERE order_id = ?").get(orderId)
        ?.status,
      stock: db.query<{ stock: number }, [string]>("SELECT stock FROM products WHERE sku = ?").get(sku)
        ?.stock,
    };
  } finally {
    db.close();
  }
}

/** Every step before the one that crashed ran once, the crashed one twice, the ones after once. */
function expectStepCounts(steps: string[], crashedStep: string, id: string) {
  const probes = readProbes(stack.probeLog);
  expect(probes.some((p) => p.point === "crash" && (p.id === id || p.id.startsWith(`${id}.`)))).toBe(true);
  const counts = Object.fromEntries(steps.map((s) => [s, probeCount(probes, s, id)]));
  const expected = Object.fromEntries(steps.map((s) => [s, s === crashedStep ? 2 : 1]));
  expect(counts).toEqual(expected);
}

describe("a worker killed at each crash point: a fresh worker finishes, nothing is done twice", () => {
  for (const c of ORDER_CASES) {
    test(
      `process_order, killed at ${c.point}`,
      async () => {
        const orderId = c.id.slice("order:".length);
        const res = await call(stack.api, "POST", "/jobs", {
          order_id: orderId,
          items: [{ sku: "sku-21", qty: 2 }],
        });
        expect(res.status).toBe(202);
        accepted.push(c.id);
        expect((await doneJob(c.id)).result).toMatchObject({ order_id: orderId, status: "completed" });
        expect(stack.effects(orderId)).toEqual({ charges: 1, shipments: 1, rows: 1 });
        expectStepCounts(ORDER_STEPS, c.step, c.id);
      },
      E2E_TIMEOUT,
    );
  }

  for (const c of CANCEL_CASES) {
    test(
      `process_order canceled after the charge, killed at ${c.point}: refunded once, the stock back once`,
      async () => {
        const orderId = c.id.slice("order:".length);
        // The payment webhook waits until the cancel is recorded, so the workflow sees it once the charge is known.
        payments.holdWebhooks(orderId);
        const res = await call(stack.api, "POST", "/jobs", {
          order_id: orderId,
          items: [{ sku: c.sku, qty: 2 }],
        });
        expect(res.status).toBe(202);
        accepted.push(c.id);
        const charge = await waitFor(() => payments.chargesFor(orderId)[0], {
          message: `${orderId} charged`,
        });
        expect((await call(stack.api, "POST", `/jobs/${c.id}/cancel`, { reason: "recovery" })).status).toBe(
          202,
        );
        payments.releaseWebhooks(orderId);

        const job = await canceledJob(c.id);
        expect(job.result).toMatchObject({
          status: "canceled",
          undone: {
            released_stock: [{ sku: c.sku, qty: 2 }],
            refund: { charge_id: charge.id, amount_cents: charge.amount_cents },
          },
        });
        expect(payments.refundsFor(orderId).map((r) => [r.charge, r.amount_cents])).toEqual([
          [charge.id, charge.amount_cents],
        ]);
        expect(stack.effects(orderId)).toEqual({ charges: 1, shipments: 0, rows: 1 });
        expect(database(orderId, c.sku)).toEqual({ row: "canceled", stock: 10_000 });
        expectStepCounts(CANCEL_STEPS, c.step, c.id);
      },
      E2E_TIMEOUT,
    );
  }

  for (const c of APPROVAL_CASES) {
    test(
      `approve_then_ship, killed at ${c.point}`,
      async () => {
        const orderId = c.id.slice("ship:".length);
        expect((await call(stack.api, "POST", `/orders/${orderId}/approve-and-ship`)).status).toBe(202);
        accepted.push(c.id);
        const deliveries = await sendWebhook({
          url: `${stack.api.url}/webhooks/approval/${orderId}`,
          secret: CHAOS_SECRET,
          body: JSON.stringify({ approved: true, approver: "chaos" }),
          retries: 60,
          backoffMs: 100,
        });
        expect(deliveries.at(-1)?.status).toBe(200);
        expect((await doneJob(c.id)).result).toMatchObject({ status: "shipped" });
        expect(stack.effects(orderId)).toEqual({ charges: 0, shipments: 1, rows: 0 });
        expectStepCounts(APPROVAL_STEPS, c.step, c.id);
      },
      E2E_TIMEOUT,
    );
  }

  for (const c of CHECKOUT_CASES) {
    test(
      `place_order (business → db), killed at ${c.point}`,
      async () => {
        const key = c.id.split(":")[2] as string;
        const res = await call(
          stack.api,
          "POST",
          "/users/cpuser/orders",
          { cart: [{ sku: "sku-22", qty: 1 }] },
          { "idempotency-key": key },
        );
        expect([201, 202]).toContain(res.status);
        accepted.push(c.id);
        expect((await doneJob(c.id)).result).toMatchObject({ order: { order_id: `cpuser:${key}` } });
        expect(stack.effects(`cpuser:${key}`)).toEqual({ charges: 0, shipments: 0, rows: 1 });
        expectStepCounts(CHECKOUT_STEPS, c.step, c.id);
      },
      E2E_TIMEOUT,
    );
  }

  test(
    "compute_quote, killed after computing the price: the quote still completes",
    async () => {
      const res = await requestQuote(stack.api, { sku: "sku-23", qty: 4 }, 1);
      expect([200, 202]).toContain(res.status);
      const quoteId = String(res.body.quote_id);
      const done = (await answers200(stack.api, `/price-quote/${quoteId}`)).body;
      expect(done).toMatchObject({ sku: "sku-23", qty: 4 });
      expect(readProbes(stack.probeLog).some((p) => p.point === "crash" && p.at === "pricing.compute")).toBe(
        true,
      );
    },
    E2E_TIMEOUT,
  );
});
