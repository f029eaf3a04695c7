/**
 * Canceling jobs across real processes (`startSystem`: a Resonate server,
 * one worker process per group, the API, the sandbox third parties in this
 * process). A test that needs a workflow to be at a given point holds it
 * there: the payment webhook held back at the provider, or a group's only
 * worker stopped until the test has asked what it means to ask.
 */

import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { GROUPS } from "../../core/config.ts";
import {
  decodeValue,
  getPromise,
  type System,
  sendWebhook,
  startSystem,
  waitFor,
} from "../../harness/index.ts";
import type { WorkerSlot } from "../../harness/service.ts";
import { TEST_API_AUTH } from "../support/api-auth.ts";
import { call } from "../support/http.ts";
import { E2E_TIMEOUT } from "../support/processes.ts";
import { TEST_SECRET } from "../support/secrets.ts";

let system: System;
beforeAll(async () => {
  system = await startSystem({
    workers: Object.fromEntries(GROUPS.map((group) => [group, 1])),
    server: { retryTimeoutMs: 1_000, tickMs: 100 },
    sandbox: { webhookDelayMs: 50 },
    webhookSecret: TEST_SECRET,
    apiAuth: TEST_API_AUTH,
    env: { RESONATE_TTL_MS: "2000" },
  });
}, E2E_TIMEOUT);
afterAll(() => system?.stop(), E2E_TIMEOUT);

const api = () => ({ url: system.apiUrl });
const sandbox = () => {
  if (!system.sandbox) throw new Error("the system started no sandbox");
  return system.sandbox;
};
const cancel = (id: string, body: unknown = {}) => call(api(), "POST", `/jobs/${id}/cancel`, body);
const jobOf = async (id: string) => (await call(api(), "GET", `/jobs/${id}`)).body;
const ended = (id: string, statuses = ["done", "canceled", "failed", "timed_out"]) =>
  waitFor(
    async () => {
      const job = await jobOf(id);
      return statuses.includes(String(job.status)) ? job : undefined;
    },
    { timeout: 30_000, message: `${id} ended` },
  );
const approval = (orderId: string, body: object) =>
  sendWebhook({
    url: `${system.apiUrl}/webhooks/approval/${orderId}`,
    secret: TEST_SECRET,
    body: JSON.stringify(body),
  });

/** An order's row status and a sku's stock, read from the service database. */
function database(orderId: string, sku: string) {
  const db = new Database(join(system.dataDir, "app.db"), { readonly: true });
  try {
    return {
      row:
        db.query<{ status: string }, [string]>("SELECT status FROM orders WHERE order_id = ?").get(orderId)
          ?.status ?? null,
      stock: db.query<{ stock: number }, [string]>("SELECT stock FROM products WHERE sku = ?").get(sku)
        ?.stock,
    };
  } finally {
    db.close();
  }
}

/** What the third parties recorded for an order. */
const ledger = (orderId: string) => ({
  charges: sandbox().payment.chargesFor(orderId).length,
  refunds: sandbox()
    .payment.refundsFor(orderId)
    .map((r) => r.amount_cents),
  shipments: sandbox().carrier.shipmentsFor(orderId).length,
});

/** Stops `group`'s only worker while `during` runs, then starts a fresh one; work for the group waits meanwhile. */
async function withoutWorker<T>(group: string, during: () => Promise<T>): Promise<T> {
  const slot = system.workers.slots.find((s) => s.group === group) as WorkerSlot;
  const dying = slot.current;
  system.workers.kill(slot);
  await dying?.exited;
  try {
    return await during();
  } finally {
    await system.workers.replace(slot);
  }
}

/** Submits an order whose payment webhook the provider holds back, and waits until it has charged it. */
async function chargedAndWaiting(orderId: string, sku: string) {
  sandbox().payment.holdWebhooks(orderId);
  const res = await call(api(), "POST", "/jobs", { order_id: orderId, items: [{ sku, qty: 2 }] });
  expect(res.status).toBe(202);
  return waitFor(() => sandbox().payment.chargesFor(orderId)[0], { message: `${orderId} charged` });
}

/** Starts approve-and-ship and waits until the workflow has recorded its approval promise (`.1` is that RPC). */
async function waitingForApproval(orderId: string) {
  expect((await call(api(), "POST", `/orders/${orderId}/approve-and-ship`)).status).toBe(202);
  await waitFor(
    async () => (await getPromise(system.resonateUrl, `ship:${orderId}.1`))?.state === "resolved",
    {
      message: `approval of ${orderId} recorded`,
    },
  );
}

describe("POST /jobs/:id/cancel across processes", () => {
  test(
    "an order canceled before it is charged: nothing charged, the stock back, the order canceled",
    async () => {
      // No order worker: the job is accepted and waits, so the cancel is there before its first step.
      await withoutWorker("order-workers", async () => {
        const res = await call(api(), "POST", "/jobs", {
          order_id: "x-1",
          items: [{ sku: "sku-71", qty: 2 }],
        });
        expect(res.status).toBe(202);
        expect(await cancel("order:x-1", { reason: "changed my mind" })).toMatchObject({
          status: 202,
          body: { job_id: "order:x-1", status: "canceling" },
        });
        expect(await jobOf("order:x-1")).toMatchObject({ job_id: "order:x-1", status: "canceling" });
      });
      const job = await ended("order:x-1");
      expect(job).toMatchObject({
        status: "canceled",
        reason: "changed my mind",
        result: {
          status: "canceled",
          charge_id: null,
          undone: { released_stock: [{ sku: "sku-71", qty: 2 }], refund: null },
        },
      });
      expect(ledger("x-1")).toEqual({ charges: 0, refunds: [], shipments: 0 });
      expect(database("x-1", "sku-71")).toEqual({ row: "canceled", stock: 10_000 });
    },
    E2E_TIMEOUT,
  );

  test(
    "an order canceled after the charge: refunded once, the stock back, the order canceled, nothing shipped",
    async () => {
      const charge = await chargedAndWaiting("x-2", "sku-72");
      expect(database("x-2", "sku-72").stock).toBe(10_000 - 2);
      expect((await cancel("order:x-2")).status).toBe(202);
      // Asked twice while it runs: the same answer.
      expect(await cancel("order:x-2", { reason: "again" })).toMatchObject({
        status: 202,
        body: { job_id: "order:x-2", status: "canceling" },
      });
      sandbox().payment.releaseWebhooks("x-2");
      const job = await ended("order:x-2");
      expect(job).toMatchObject({
        status: "canceled",
        result: { charge_id: charge.id, undone: { refund: { charge_id: charge.id } } },
      });
      expect(job).not.toHaveProperty("reason");
      expect(ledger("x-2")).toEqual({ charges: 1, refunds: [charge.amount_cents], shipments: 0 });
      expect(database("x-2", "sku-72")).toEqual({ row: "canceled", stock: 10_000 });
      expect(await cancel("order:x-2")).toMatchObject({
        status: 200,
        body: { job_id: "order:x-2", status: "canceled" },
      });
    },
    E2E_TIMEOUT,
  );

  test(
    "too late once it ships: the cancel is refused, the job ends done, and says so",
    async () => {
      await chargedAndWaiting("x-3", "sku-73");
      // No db worker: the workflow ships, then waits to record the order.
      await withoutWorker("db", async () => {
        sandbox().payment.releaseWebhooks("x-3");
        await waitFor(() => ledger("x-3").shipments === 1, { message: "x-3 shipped" });
        expect(await cancel("order:x-3")).toMatchObject({
          status: 409,
          body: {
            error: {
              code: "conflict",
              message: "job order:x-3 can no longer be canceled: it is shipping",
              details: { status: "running", stage: "shipping" },
            },
          },
        });
        expect(await jobOf("order:x-3")).toMatchObject({ job_id: "order:x-3", status: "running" });
      });
      expect(await ended("order:x-3")).toMatchObject({ status: "done", result: { status: "completed" } });
      expect(await cancel("order:x-3")).toMatchObject({
        status: 409,
        body: {
          error: {
            code: "conflict",
            message: "job order:x-3 already finished: done (completed)",
            details: { status: "done", outcome: "completed" },
          },
        },
      });
      expect(ledger("x-3")).toEqual({ charges: 1, refunds: [], shipments: 1 });
      expect(database("x-3", "sku-73")).toEqual({ row: "completed", stock: 10_000 - 2 });
    },
    E2E_TIMEOUT,
  );

  test(
    "an approval waiting for its webhook is canceled at once; the webhook that comes after is a 409",
    async () => {
      await waitingForApproval("x-4");
      const asked = await cancel("ship:x-4", { reason: "fraud" });
      expect([200, 202]).toContain(asked.status);
      expect(await ended("ship:x-4")).toMatchObject({
        status: "canceled",
        reason: "fraud",
        result: { status: "canceled", undone: { released_stock: [], refund: null } },
      });
      const [late] = await approval("x-4", { approved: true, approver: "ops" });
      expect(late?.status).toBe(409);
      expect(JSON.parse(late?.body ?? "{}")).toMatchObject({ error: { code: "conflict" } });
      expect(ledger("x-4").shipments).toBe(0);
      expect((await cancel("ship:x-4")).status).toBe(200);
    },
    E2E_TIMEOUT,
  );

  test(
    "a cancel before the approval workflow has recorded its approval promise takes its place",
    async () => {
      await withoutWorker("order-workers", async () => {
        expect((await call(api(), "POST", "/orders/x-5/approve-and-ship")).status).toBe(202);
        expect((await cancel("ship:x-5")).status).toBe(202);
        // The cancel is recorded as the order's approval: a webhook finds it, and is refused.
        const [webhook] = await approval("x-5", { approved: true });
        expect(webhook?.status).toBe(409);
      });
      expect(await ended("ship:x-5")).toMatchObject({ status: "canceled", result: { status: "canceled" } });
      expect(ledger("x-5").shipments).toBe(0);
    },
    E2E_TIMEOUT,
  );

  test(
    "a webhook racing a cancel: exactly one wins the approval, and the job and the carrier agree",
    async () => {
      for (const orderId of ["x-6a", "x-6b", "x-6c", "x-6d"]) {
        await waitingForApproval(orderId);
        const [deliveries, asked] = await Promise.all([
          approval(orderId, { approved: true, approver: "ops" }),
          cancel(`ship:${orderId}`),
        ]);
        const webhook = deliveries.at(-1)?.status;
        const job = await ended(`ship:${orderId}`);
        const decided = decodeValue((await getPromise(system.resonateUrl, `ship:${orderId}.0`))?.value) as {
          approved: boolean;
          canceled?: boolean;
        };
        const seen = { webhook, cancel: asked.status, job: job.status, shipments: ledger(orderId).shipments };
        if (decided.canceled) {
          // The cancel settled the approval: the webhook lost, nothing shipped.
          expect(seen).toEqual({ webhook: 409, cancel: seen.cancel, job: "canceled", shipments: 0 });
          expect([200, 202]).toContain(asked.status);
        } else if (asked.status === 409) {
          // The webhook won and the workflow sealed before the cancel came: it shipped.
          expect(decided.approved).toBe(true);
          expect(seen).toEqual({ webhook: 200, cancel: 409, job: "done", shipments: 1 });
        } else {
          // The webhook won the approval, and the workflow saw the cancel before it shipped.
          expect(decided.approved).toBe(true);
          expect(seen).toEqual({ webhook: 200, cancel: seen.cancel, job: "canceled", shipments: 0 });
          expect([200, 202]).toContain(asked.status);
        }
      }
    },
    E2E_TIMEOUT,
  );

  test(
    "a finished job is a 409; an unknown one a 404",
    async () => {
      await call(api(), "POST", "/jobs", { order_id: "x-7", items: [{ sku: "sku-77", qty: 1 }] });
      expect(await ended("order:x-7")).toMatchObject({ status: "done" });
      expect(await cancel("order:x-7")).toMatchObject({
        status: 409,
        body: { error: { code: "conflict", message: "job order:x-7 already finished: done (completed)" } },
      });
      expect(await cancel("order:x-never")).toMatchObject({
        status: 404,
        body: { error: { code: "not_found", message: "job order:x-never not found" } },
      });
    },
    E2E_TIMEOUT,
  );
});
