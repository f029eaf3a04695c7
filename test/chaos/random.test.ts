import { describe, expect, test } from "bun:test";
import { NOTHING_BROKEN, summaryLine } from "../../harness/chaos/invariants.ts";
import { seededRandom } from "../../harness/chaos/rng.ts";
import { startChaos } from "../../harness/chaos/scheduler.ts";
import { CHAOS_SECRET, startChaosStack } from "../../harness/chaos/stack.ts";
import { readJobList, runWorkload, waitQuiescent } from "../../harness/chaos/workload.ts";
import { TEST_API_AUTH } from "../support/api-auth.ts";

/** Replay a failing run with CHAOS_SEED=<the seed it printed>. */
const SEED = Number(process.env.CHAOS_SEED ?? 42);

describe("random chaos: workers, the server and the API killed at random moments", () => {
  test(`a stream of workflows loses nothing and does nothing twice (seed ${SEED})`, async () => {
    await using stack = await startChaosStack({
      groups: { "order-workers": 2, "pricing-workers": 2, db: 2, business: 2 },
      webhookCopies: 2,
      webhookShuffleSeed: SEED,
      apiAuth: TEST_API_AUTH,
    });
    await using chaos = startChaos({
      seed: SEED,
      pool: stack.pool,
      intervalMs: [150, 600],
      maxKills: 16,
      server: { handle: stack.server, restarts: 1 },
      extra: { name: "api", restarts: 1, kill: () => stack.api.kill(), restart: () => stack.api.restart() },
    });
    const work = await runWorkload({
      apiUrl: stack.api.url,
      webhookSecret: CHAOS_SECRET,
      token: (sub, claims) => stack.apiAuth.token(sub, claims),
      rng: seededRandom(SEED + 1),
      count: 40,
      concurrency: 6,
      prefix: `rnd${SEED}`,
    });
    await chaos.done;
    const stillPending = await waitQuiescent(stack.server.url, work.accepted, 60_000);
    const report = await stack.report(work.accepted, work.webhooks, {
      listed: await readJobList(stack.api.url, (sub, claims) => stack.apiAuth.token(sub, claims)),
    });
    console.log(summaryLine("chaos", report, chaos.kills + chaos.serverRestarts + chaos.extraRestarts));
    expect(work.failures).toEqual([]);
    expect(stillPending).toEqual([]);
    expect(chaos.kills).toBe(16);
    expect(chaos.serverRestarts).toBe(1);
    expect(report.violations).toEqual([]);
    expect(report).toMatchObject({
      workflows: 40,
      ...NOTHING_BROKEN,
    });
  }, 180_000);
});
