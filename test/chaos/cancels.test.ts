/**
 * Cancels under chaos: a seeded workload of orders and approvals, most asked
 * to cancel at random moments, while workers, the Resonate server and the
 * API are killed; then the invariant report, which must find nothing, and
 * the same report over ledgers broken on purpose, which must find each break.
 *
 *   CHAOS_SEED=<n> bun test test/chaos/cancels.test.ts
 */
import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cancelCrashes } from "../../harness/chaos/crash-points.ts";
import {
  type CancelAnswer,
  cancelLine,
  type InvariantReport,
  NOTHING_BROKEN,
  type Observations,
  summaryLine,
} from "../../harness/chaos/invariants.ts";
import { readProbes } from "../../harness/chaos/probe-log.ts";
import { seededRandom } from "../../harness/chaos/rng.ts";
import { startChaos } from "../../harness/chaos/scheduler.ts";
import { CHAOS_SECRET, type ChaosStack, startChaosStack } from "../../harness/chaos/stack.ts";
import { observeRun, runWorkload, type WorkloadResult, waitQuiescent } from "../../harness/chaos/workload.ts";
import { TEST_API_AUTH } from "../support/api-auth.ts";
import { E2E_TIMEOUT } from "../support/processes.ts";

/** Replay a failing run with CHAOS_SEED=<the seed it printed>. */
const SEED = Number(process.env.CHAOS_SEED ?? 42);
const WORKFLOWS = 48;

let stack: ChaosStack;
let work: WorkloadResult;
let observed: Observations;
let stillPending: string[];
let kills = 0;

beforeAll(async () => {
  stack = await startChaosStack({
    groups: { "order-workers": 2, "pricing-workers": 1, db: 2, business: 1 },
    webhookCopies: 2,
    webhookShuffleSeed: SEED,
    // Payments come 900 ms after the charge, so some cancels land while a taken charge waits for its webhook.
    paymentWebhookDelayMs: 900,
    apiAuth: TEST_API_AUTH,
    // One crash at each probe of the cancel path, in whichever workflow gets there first.
    crashAt: cancelCrashes(),
    // Approved orders wait a little before they ship, so some cancels land between an approval and its shipment.
    env: { SHIP_COOLING_OFF_MS: "200" },
  });
  await using chaos = startChaos({
    seed: SEED,
    pool: stack.pool,
    groups: ["order-workers", "db"],
    intervalMs: [150, 500],
    maxKills: 12,
    server: { handle: stack.server, restarts: 1 },
    extra: { name: "api", restarts: 1, kill: () => stack.api.kill(), restart: () => stack.api.restart() },
  });
  work = await runWorkload({
    apiUrl: stack.api.url,
    webhookSecret: CHAOS_SECRET,
    token: (sub, claims) => stack.apiAuth.token(sub, claims),
    rng: seededRandom(SEED + 2),
    count: WORKFLOWS,
    concurrency: 6,
    prefix: `cxl${SEED}`,
    mix: { job: 55, approval: 35, checkout: 10, quote: 0 },
    cancel: { share: 0.6, delayMs: [0, 3000] },
    declineShare: 0.15,
  });
  await chaos.done;
  kills = chaos.kills + chaos.serverRestarts + chaos.extraRestarts;
  stillPending = await waitQuiescent(stack.server.url, work.accepted, 60_000);
  observed = (await observeRun(stack.api.url, (sub, claims) => stack.apiAuth.token(sub, claims), work))
    .observations;
}, 120_000);

afterAll(() => stack?.stop(), E2E_TIMEOUT);

/** The broken rules of a report, one `<rule> <workflow id>` each. */
const broken = (report: InvariantReport) =>
  [...new Set(report.violations.map((v) => `${v.rule} ${v.id}`))].sort();

/** Runs `sql` on a SQLite file the system writes (WAL, so beside its own writers). */
function write(path: string, sql: string, ...values: (string | number)[]) {
  const db = new Database(path);
  try {
    db.exec("PRAGMA busy_timeout = 5000");
    db.query(sql).run(...values);
  } finally {
    db.close();
  }
}

function readOne<T>(path: string, sql: string): T {
  const db = new Database(path, { readonly: true });
  try {
    const row = db.query<T, []>(sql).get();
    if (!row) throw new Error(`no row for ${sql}`);
    return row;
  } finally {
    db.close();
  }
}

describe("cancels under chaos: jobs asked to stop at random moments while processes are killed", () => {
  test(`every job ends once, a canceled order is undone, every answer holds (seed ${SEED})`, async () => {
    const report = await stack.report(work.accepted, work.webhooks, observed);
    const crashes = readProbes(stack.probeLog).filter((p) => p.point === "crash").length;
    console.log(summaryLine("cancels", report, kills + crashes));
    console.log(cancelLine(report), JSON.stringify(report.cancels.paths));
    expect(work.failures).toEqual([]);
    expect(stillPending).toEqual([]);
    expect(report.violations).toEqual([]);
    expect(report).toMatchObject({
      workflows: WORKFLOWS,
      completed: WORKFLOWS,
      ...NOTHING_BROKEN,
    });
    // The run proves something only if cancels both won and came too late, and a taken charge was refunded.
    expect(report.cancels.canceled).toBeGreaterThan(0);
    expect(report.cancels.too_late).toBeGreaterThan(0);
    expect(report.refunds).toBeGreaterThan(0);
    expect(crashes).toBe(5);
  });

  test("the report finds a shipped, unrefunded or unreleased cancel, a refund of a completed order, a wrong answer and a wrong list", async () => {
    // A canceled order that was refunded: ship it anyway.
    const refunded = readOne<{ order_id: string }>(
      stack.paymentLedger,
      "SELECT order_id FROM refunds LIMIT 1",
    );
    write(
      stack.carrierLedger,
      "INSERT INTO shipments (id, idempotency_key, fingerprint, order_id, tracking_number, status, created_at) VALUES (?, ?, '', ?, 'TRK-FORGED', 'created', 0)",
      "shp_forged",
      `ship:order:${refunded.order_id}`,
      refunded.order_id,
    );
    // A completed order: refund it.
    const completed = readOne<{ order_id: string; charge_id: string; total_cents: number }>(
      stack.databasePath,
      "SELECT order_id, charge_id, total_cents FROM orders WHERE kind = 'job' AND status = 'completed' LIMIT 1",
    );
    write(
      stack.paymentLedger,
      "INSERT INTO refunds (id, idempotency_key, fingerprint, charge, order_id, amount_cents, currency, status, created_at) VALUES ('re_forged', ?, '', ?, ?, ?, 'USD', 'succeeded', 0)",
      `refund:order:${completed.order_id}`,
      completed.charge_id,
      completed.order_id,
      completed.total_cents,
    );
    // Another canceled order: take its stock back out.
    const unreleased = readOne<{ order_id: string }>(
      stack.databasePath,
      `SELECT order_id FROM orders WHERE kind = 'job' AND status = 'canceled' AND order_id != '${refunded.order_id}' LIMIT 1`,
    );
    write(
      stack.databasePath,
      "UPDATE reservations SET released = 0 WHERE reservation_id = ?",
      `order:${unreleased.order_id}`,
    );
    // The completed order "answered 200" to a cancel; an approval's first webhook given the other answer.
    const lie: CancelAnswer = { job_id: `order:${completed.order_id}`, status: 200 };
    const approval = work.approvals[0];
    if (!approval) throw new Error("the workload sent no approval");
    const [first, ...rest] = approval.deliveries;
    if (!first) throw new Error(`${approval.job_id} had no webhook`);
    const flipped =
      first.status === 200 ? { ...first, status: 409 } : { ...first, status: 200, duplicate: true };
    // The list: the newest job twice, the next with another status, one left out.
    const [newest, next, left, ...others] = observed.listed ?? [];
    if (!newest || !next || !left) throw new Error("the list has fewer than three jobs");
    const listed = [
      newest,
      newest,
      { ...next, status: next.status === "done" ? "failed" : "done" },
      ...others,
    ];

    const report = await stack.report(work.accepted, work.webhooks, {
      ...observed,
      cancels: [...(observed.cancels ?? []), lie],
      approvals: [
        ...(observed.approvals ?? []).filter((a) => a !== approval),
        { ...approval, deliveries: [flipped, ...rest] },
      ],
      listed,
    });
    expect(broken(report)).toEqual(
      [
        `canceled-order order:${refunded.order_id}`,
        `terminal order:${completed.order_id}`,
        `refund order:${completed.order_id}`,
        `cancel-answer order:${completed.order_id}`,
        `canceled-order order:${unreleased.order_id}`,
        `approval ${approval.job_id}`,
        `listed ${newest.job_id}`,
        `listed ${next.job_id}`,
      ].sort(),
    );
    expect(report.stock_mismatches).toBeGreaterThan(0);
    expect(report.unlisted_ids).toEqual([left.job_id]);
  });
});
