import { describe, expect, test } from "bun:test";
import { Next, Orders } from "../../core/functions.ts";
import { versionKey } from "../../core/resonate/versions.ts";
import { failuresBeyondTheKernel } from "../../harness/chaos/client.ts";
import { NOTHING_BROKEN, summaryLine } from "../../harness/chaos/invariants.ts";
import { seededRandom } from "../../harness/chaos/rng.ts";
import { spreadOver, startRollingRestarts } from "../../harness/chaos/rolling.ts";
import { CHAOS_SECRET, startChaosStack } from "../../harness/chaos/stack.ts";
import { checkVersions, drainedOf } from "../../harness/chaos/versions.ts";
import { runWorkload, waitQuiescent } from "../../harness/chaos/workload.ts";
import { TEST_API_AUTH } from "../support/api-auth.ts";

/** Replay a failing run with CHAOS_SEED=<the seed it printed>. */
const SEED = Number(process.env.CHAOS_SEED ?? 42);
const V1 = versionKey(Orders.processOrder.name, Orders.processOrder.version);
const V2 = versionKey(Next.processOrderV2.name, Next.processOrderV2.version);

describe("deploys: the workflows' build rolled to the next (process_order v2) and back, one process at a time", () => {
  test(`jobs of both versions finish, each on its own version's steps, nothing lost or done twice (seed ${SEED})`, async () => {
    await using stack = await startChaosStack({
      groups: { "order-workers": 2, "pricing-workers": 2, db: 2, business: 2 },
      apiProcesses: 2,
      webhookShuffleSeed: SEED,
      paymentWebhookDelayMs: 500,
      apiAuth: TEST_API_AUTH,
    });
    const drained = drainedOf(stack.server.url, V2);
    const token = (sub: string, claims?: { scope?: string }) => stack.apiAuth.token(sub, claims);
    /** A workload of `count` beside one deploy round from `from`, begun once `head` are submitted. */
    const half = async (from: "current" | "next", prefix: string, head: number) => {
      await using round = startRollingRestarts({
        target: stack,
        rounds: 1,
        seed: SEED,
        held: true,
        deploy: { drained, from },
      });
      const work = await runWorkload({
        apiUrl: stack.api.url,
        webhookSecret: CHAOS_SECRET,
        token,
        rng: seededRandom(SEED + prefix.length),
        count: 30,
        concurrency: 4,
        prefix: `${prefix}${SEED}`,
        // Mostly orders, the workflow whose version the deploy changes.
        mix: { job: 70, approval: 10, checkout: 10, quote: 10 },
        pace: spreadOver(round, 30, head),
      });
      await round.done;
      expect(round.rounds).toBe(1);
      return work;
    };
    // To the next build under load; then back, the first half of that load started on the next build.
    const forward = await half("current", "to-next", 5);
    const back = await half("next", "to-current", 15);
    const accepted = [...forward.accepted, ...back.accepted];
    const webhooks = {
      accepted: forward.webhooks.accepted + back.webhooks.accepted,
      duplicate: forward.webhooks.duplicate + back.webhooks.duplicate,
      rejected: forward.webhooks.rejected + back.webhooks.rejected,
    };
    expect(await waitQuiescent(stack.server.url, accepted, 60_000)).toEqual([]);
    const report = await stack.report(accepted, webhooks);
    const versions = await checkVersions(stack.server.url, accepted);
    console.log(summaryLine("deploys", report, 0), JSON.stringify(versions.started));
    expect([...forward.failures, ...back.failures]).toEqual([]);
    expect(report.violations).toEqual([]);
    expect(report).toMatchObject({ workflows: 60, ...NOTHING_BROKEN });
    // Orders of both versions ran, and every finished job replays against its own version's code.
    expect(versions.started[V1]).toBeGreaterThan(0);
    expect(versions.started[V2]).toBeGreaterThan(0);
    expect(versions.mismatches).toEqual([]);
    for (const work of [forward, back])
      expect(failuresBeyondTheKernel(work.failedRequests)).toEqual({ count: 0, by_kind: {}, samples: [] });
  }, 170_000);
});
