/**
 * The real Resonate server on PostgreSQL, and PostgreSQL going away under
 * it: killed with SIGKILL mid-run and started again on its data, as a
 * managed database fails over. Nothing is lost, no effect happens twice,
 * and the API answers 503 with Retry-After while the store is away, never
 * a 500. The store itself (a kill loses no acknowledged commit) and the
 * refusals run on every machine; the drill needs the real server.
 */
import { describe, expect, test } from "bun:test";
import { SQL } from "bun";
import { NOTHING_BROKEN, summaryLine } from "../../harness/chaos/invariants.ts";
import { seededRandom } from "../../harness/chaos/rng.ts";
import { CHAOS_SECRET, startChaosStack } from "../../harness/chaos/stack.ts";
import { runWorkload, WORKLOAD_CALLER, waitQuiescent } from "../../harness/chaos/workload.ts";
import { startPostgres, startResonateServer } from "../../harness/index.ts";
import { TEST_API_AUTH } from "../support/api-auth.ts";
import { requireCapability } from "../support/capability.ts";
import { E2E_TIMEOUT } from "../support/processes.ts";

const SEED = Number(process.env.CHAOS_SEED ?? 42);

describe("PostgreSQL as the real server's store", () => {
  test("a PostgreSQL killed with SIGKILL and started again on its data still holds every commit it acknowledged", async () => {
    await using pg = await startPostgres();
    const before = new SQL(pg.url);
    await before`CREATE TABLE acknowledged (n int)`;
    for (let n = 0; n < 50; n++) await before`INSERT INTO acknowledged VALUES (${n})`;
    await before.close();
    await pg.kill();
    expect(await pg.process.exited).not.toBe(0);
    await pg.restart();
    const after = new SQL(pg.url);
    try {
      expect(await after`SELECT count(*)::int AS n FROM acknowledged`).toEqual([{ n: 50 }]);
    } finally {
      await after.close();
    }
  }, 60_000);

  test("our server refuses a PostgreSQL store, naming the real server", async () => {
    await expect(startResonateServer({ kind: "harness", storage: "postgres" })).rejects.toThrow(
      /our server stores in SQLite only; PostgreSQL needs the real server \(RESONATE_BIN\)/,
    );
  });

  requireCapability("postgresStore")(
    `killed mid-run: nothing lost, no effect twice, and the API answers 503 with Retry-After while it is away (seed ${SEED})`,
    async () => {
      await using stack = await startChaosStack({
        server: "real",
        storage: "postgres",
        groups: { "order-workers": 2, "pricing-workers": 1, db: 1, business: 1 },
        webhookCopies: 2,
        webhookShuffleSeed: SEED,
        paymentWebhookDelayMs: 500,
        apiAuth: TEST_API_AUTH,
      });
      const pg = stack.server.postgres;
      if (!pg) throw new Error("the real server started no PostgreSQL");
      const token = (sub: string, claims?: { scope?: string }) => stack.apiAuth.token(sub, claims);
      const operator = await token(WORKLOAD_CALLER.sub, { scope: WORKLOAD_CALLER.scope });
      let outage: { status: number; retryAfter: string | null; body: string } | undefined;
      // Mid-run (the 12th workflow waits for it, the ones before are in flight): the store goes away, the API is
      // asked for the job list meanwhile, and the store comes back on its data.
      let away: Promise<void> | undefined;
      const storeAway = async () => {
        await pg.kill();
        const res = await fetch(`${stack.api.url}/jobs`, {
          headers: { authorization: `Bearer ${operator}` },
        });
        outage = { status: res.status, retryAfter: res.headers.get("retry-after"), body: await res.text() };
        await pg.restart();
      };
      const done = await runWorkload({
        apiUrl: stack.api.url,
        webhookSecret: CHAOS_SECRET,
        token,
        rng: seededRandom(SEED + 1),
        count: 30,
        concurrency: 4,
        prefix: `pg${SEED}`,
        retryForMs: 120_000,
        cancel: { share: 0.2 },
        pace: async (i) => {
          if (i === 12) away ??= storeAway();
          if (i >= 12) await away;
        },
      });
      const stillPending = await waitQuiescent(stack.server.url, done.accepted, 90_000);
      const report = await stack.report(done.accepted, done.webhooks, {
        cancels: done.cancels,
        approvals: done.approvals,
      });
      console.log(summaryLine("postgres", report, 1));
      expect(outage).toMatchObject({ status: 503, retryAfter: expect.stringMatching(/^\d+$/) });
      expect(JSON.parse(outage?.body ?? "{}")).toMatchObject({ error: { code: "resonate_unavailable" } });
      expect(done.failures).toEqual([]);
      expect(stillPending).toEqual([]);
      expect(report).toMatchObject({ workflows: 30, ...NOTHING_BROKEN });
      expect(done.failedRequests.by_kind["5xx"] ?? 0).toBe(0);
    },
    E2E_TIMEOUT * 2,
  );
});
