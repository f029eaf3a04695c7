import { describe, expect, test } from "bun:test";
import { failuresBeyondTheKernel } from "../../harness/chaos/client.ts";
import { NOTHING_BROKEN, summaryLine } from "../../harness/chaos/invariants.ts";
import { seededRandom } from "../../harness/chaos/rng.ts";
import { rollingLine, spreadOver, startRollingRestarts } from "../../harness/chaos/rolling.ts";
import { CHAOS_SECRET, startChaosStack } from "../../harness/chaos/stack.ts";
import { checkStreams } from "../../harness/chaos/streams.ts";
import { observeRun, runWorkload, waitQuiescent } from "../../harness/chaos/workload.ts";
import { TEST_API_AUTH } from "../support/api-auth.ts";

/** Replay a failing run with CHAOS_SEED=<the seed it printed>. */
const SEED = Number(process.env.CHAOS_SEED ?? 42);
const GROUPS = { "order-workers": 2, "pricing-workers": 2, db: 2, business: 2 };

describe("rolling restart: every API process and worker stopped with SIGTERM, one at a time", () => {
  test(`a deploy under load loses nothing, fails no request and breaks no event stream (seed ${SEED})`, async () => {
    await using stack = await startChaosStack({
      groups: GROUPS,
      apiProcesses: 2,
      webhookCopies: 2,
      webhookShuffleSeed: SEED,
      // Jobs that live a second or two (a payment webhook due 1 s after the charge, a 1 s cooling-off
      // before a shipment), so that API processes stop under open event streams.
      paymentWebhookDelayMs: 1_000,
      env: { SHIP_COOLING_OFF_MS: "1000" },
      apiAuth: TEST_API_AUTH,
    });
    const token = (sub: string, claims?: { scope?: string }) => stack.apiAuth.token(sub, claims);
    const firstApis = stack.apis.map((api) => api.pid);
    await using rolling = startRollingRestarts({ target: stack, rounds: 1, seed: SEED, held: true });
    const work = await runWorkload({
      apiUrl: stack.api.url,
      webhookSecret: CHAOS_SECRET,
      token,
      rng: seededRandom(SEED + 1),
      count: 40,
      concurrency: 4,
      prefix: `roll${SEED}`,
      cancel: { share: 0.2 },
      follow: { share: 0.6, forMs: 90_000 },
      // The round begins once 8 are submitted; the rest are spread over it.
      pace: spreadOver(rolling, 40, 8),
    });
    await rolling.done;
    const stillPending = await waitQuiescent(stack.server.url, work.accepted, 60_000);
    const { observations, statuses } = await observeRun(stack.api.url, token, work);
    const report = await stack.report(work.accepted, work.webhooks, observations);
    const streamViolations = checkStreams(work.streams, statuses);
    console.log(summaryLine("rolling", report, 0));
    console.log(rollingLine(rolling, work.failedRequests, work.streams, streamViolations));
    expect(work.failures).toEqual([]);
    expect(stillPending).toEqual([]);
    expect(report.violations).toEqual([]);
    expect(report).toMatchObject({ workflows: 40, ...NOTHING_BROKEN });
    expect(streamViolations).toEqual([]);
    expect(work.streams.length).toBeGreaterThan(5);
    // Every process once: both API processes and all eight workers, each replaced by a ready one.
    expect({ rounds: rolling.rounds, api: rolling.apiRestarts, workers: rolling.workerRestarts }).toEqual({
      rounds: 1,
      api: 2,
      workers: 8,
    });
    expect(stack.pool.slots.map((s) => s.generations)).toEqual(Array(8).fill(2));
    expect(stack.apis.map((api, i) => api.pid !== firstApis[i])).toEqual([true, true]);
    // Last, so that a failure here says the rest held: no request may fail (an answer is
    // "not now", a 503 with Retry-After, or the answer), with the samples when one did.
    expect(failuresBeyondTheKernel(work.failedRequests)).toEqual({ count: 0, by_kind: {}, samples: [] });
  }, 170_000);
});
