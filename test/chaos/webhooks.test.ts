import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { WebhookTally } from "../../harness/chaos/invariants.ts";
import { NOTHING_BROKEN, summaryLine } from "../../harness/chaos/invariants.ts";
import { between, pick, seededRandom } from "../../harness/chaos/rng.ts";
import { CHAOS_SECRET, type ChaosStack, startChaosStack } from "../../harness/chaos/stack.ts";
import { waitQuiescent } from "../../harness/chaos/workload.ts";
import { type Delivery, sendWebhook } from "../../harness/index.ts";
import { TEST_API_AUTH } from "../support/api-auth.ts";
import { call } from "../support/http.ts";
import { E2E_TIMEOUT } from "../support/processes.ts";
import { WRONG_SECRET } from "../support/secrets.ts";

const SEED = Number(process.env.CHAOS_SEED ?? 7);

let stack: ChaosStack;
const accepted: string[] = [];
const tally: WebhookTally = { accepted: 0, duplicate: 0, rejected: 0 };

beforeAll(async () => {
  // Every payment event goes out three times at once, batches in a shuffled order.
  // `call` sends the tests' tokens, so the API checks them with the tests' key.
  stack = await startChaosStack({ webhookCopies: 3, webhookShuffleSeed: SEED, apiAuth: TEST_API_AUTH });
}, E2E_TIMEOUT);

afterAll(async () => {
  const report = await stack.report(accepted, tally);
  console.log(summaryLine("webhooks", report, 0));
  await stack.stop();
  expect(report).toMatchObject(NOTHING_BROKEN);
}, E2E_TIMEOUT);

type Plan = { approved: boolean; kind: "valid" | "bad-signature" | "stale"; delayMs: number };

describe("webhook chaos: duplicates, concurrency, reordering, early delivery, contradictions, bad signatures", () => {
  test("every approval workflow reaches the outcome of the first valid delivery the API accepted", async () => {
    const rng = seededRandom(SEED);
    const orders = Array.from({ length: 12 }, (_, i) => `wh-${SEED}-${i}`);
    const outcomes = await Promise.all(
      orders.map(async (orderId) => {
        // Deliveries start before, with, or after the workflow begins to wait (early delivery).
        const plans: Plan[] = Array.from({ length: between(rng, 2, 6) }, () => ({
          approved: rng() < 0.6,
          kind: pick(rng, ["valid", "valid", "valid", "bad-signature", "stale"] as const),
          delayMs: between(rng, 0, 300),
        }));
        const started = call(stack.api, "POST", `/orders/${orderId}/approve-and-ship`);
        const deliveries = plans.map(async (plan) => {
          await Bun.sleep(plan.delayMs);
          const attempts = await sendWebhook({
            url: `${stack.api.url}/webhooks/approval/${orderId}`,
            secret: CHAOS_SECRET,
            signWith: plan.kind === "bad-signature" ? WRONG_SECRET : undefined,
            at: plan.kind === "stale" ? new Date(Date.now() - 3_600_000) : undefined,
            body: JSON.stringify({ approved: plan.approved, approver: `sender-${plan.approved}` }),
            // Senders retry any non-2xx: 404 (order not created yet), 503 (not waiting yet), and
            // 409 (a contradiction, retried until the sender gives up), like real ones.
            retries: plan.kind === "valid" ? 25 : 0,
            backoffMs: 50,
            maxBackoffMs: 200,
          });
          return { plan, last: attempts.at(-1) as Delivery };
        });
        expect((await started).status).toBe(202);
        accepted.push(`ship:${orderId}`);
        return { orderId, results: await Promise.all(deliveries) };
      }),
    );

    for (const { orderId, results } of outcomes) {
      for (const r of results.filter((r) => r.plan.kind !== "valid")) {
        expect(r.last.status).toBe(401);
        tally.rejected++;
      }
      const valid = results.filter((r) => r.plan.kind === "valid");
      if (valid.length === 0) {
        // Nobody decided: approve it now so the workflow can finish.
        const [d] = await sendWebhook({
          url: `${stack.api.url}/webhooks/approval/${orderId}`,
          secret: CHAOS_SECRET,
          body: JSON.stringify({ approved: true, approver: "closer" }),
          retries: 60,
          backoffMs: 50,
          maxBackoffMs: 500,
        });
        valid.push({ plan: { approved: true, kind: "valid", delayMs: 0 }, last: d as Delivery });
      }
      const firsts = valid.filter(
        (r) => r.last.status === 200 && JSON.parse(r.last.body).duplicate === false,
      );
      expect(firsts).toHaveLength(1);
      const winner = (firsts[0] as (typeof firsts)[number]).plan.approved;
      for (const r of valid) {
        if (r === firsts[0]) {
          tally.accepted++;
        } else if (r.plan.approved === winner) {
          expect({ status: r.last.status, duplicate: JSON.parse(r.last.body).duplicate }).toEqual({
            status: 200,
            duplicate: true,
          });
          tally.duplicate++;
        } else {
          expect(r.last.status).toBe(409);
          tally.rejected++;
        }
      }
      const job = await call(stack.api, "GET", `/jobs/ship:${orderId}`);
      if (job.body.status !== "done") {
        expect(await waitQuiescent(stack.server.url, [`ship:${orderId}`], 30_000)).toEqual([]);
      }
      const final = await call(stack.api, "GET", `/jobs/ship:${orderId}`);
      expect((final.body.result as { status: string }).status).toBe(winner ? "shipped" : "rejected");
      expect(stack.effects(orderId).shipments).toBe(winner ? 1 : 0);
    }
  }, 120_000);

  test("payment events delivered three times at once and out of order settle each order once", async () => {
    const ids = Array.from({ length: 10 }, (_, i) => `pay-${SEED}-${i}`);
    for (const id of ids) {
      const res = await call(stack.api, "POST", "/jobs", {
        order_id: id,
        items: [{ sku: "sku-61", qty: 1 }],
      });
      expect(res.status).toBe(202);
      accepted.push(`order:${id}`);
    }
    expect(
      await waitQuiescent(
        stack.server.url,
        ids.map((id) => `order:${id}`),
        60_000,
      ),
    ).toEqual([]);
    for (const id of ids) {
      expect((await call(stack.api, "GET", `/jobs/order:${id}`)).body.result).toMatchObject({
        status: "completed",
      });
      expect(stack.effects(id)).toEqual({ charges: 1, shipments: 1, rows: 1 });
    }
  }, 120_000);
});
