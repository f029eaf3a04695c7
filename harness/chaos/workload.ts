import { API_AUTH_DEFAULTS } from "../api-auth.ts";
import { DECLINED_SOURCE } from "../fakes/payment.ts";
import { getPromise } from "../protocol.ts";
import { webhookHeaders } from "../webhooks/send.ts";
import { attempt, type FailedRequests, noFailedRequests, persist } from "./client.ts";
import type {
  ApprovalDelivery,
  ApprovalObservation,
  CancelAnswer,
  Observations,
  WebhookTally,
} from "./invariants.ts";
import { between, pick } from "./rng.ts";
import { followJobEvents, type StreamObservation } from "./streams.ts";

export type WorkKind = "job" | "approval" | "checkout" | "quote";

/** A bearer token the API accepts for `sub` (with `scope`, space-separated scopes): `ApiAuth.token`, or a stand-in. */
export type TokenSource = (sub: string, claims?: { scope?: string }) => Promise<string>;

/** Who the workload is to the API where no user is named: an operator, who may read every job. */
export const WORKLOAD_CALLER = { sub: "chaos", scope: API_AUTH_DEFAULTS.operatorScope } as const;

export interface WorkloadOptions {
  apiUrl: string;
  webhookSecret: string;
  /**
   * Signs the callers' tokens: `WORKLOAD_CALLER`'s (an operator) for
   * `/jobs`, `/orders` and `/price-quote`, and the user's own for
   * `/users/<id>/orders`. Called for every request, so a caching source
   * (`ApiAuth.token`) signs each token once. The webhooks are signed
   * with `webhookSecret` instead.
   */
  token: TokenSource;
  rng: () => number;
  /** How many workflows to start. */
  count: number;
  /** How many run at once. Default 8. */
  concurrency?: number;
  /** Ids are made unique per run with this prefix. */
  prefix: string;
  /** Share of each kind; default 40% jobs, 25% approvals, 20% checkouts, 15% quotes. */
  mix?: Partial<Record<WorkKind, number>>;
  /** Give up on one request after this long of retrying (ms). Default 60000. */
  retryForMs?: number;
  /** Ask some jobs to stop (`POST /jobs/:id/cancel`) at random moments. Default: none. */
  cancel?: CancelPlan;
  /** Share of order jobs paid with a card the provider declines (`payment_failed`), 0–1. Default 0. */
  declineShare?: number;
  /** Follow a share of the order and approval jobs' event streams. Default: none. */
  follow?: FollowPlan;
  /**
   * Called before workflow `index` (0 to `count` − 1) is submitted; it
   * goes once this resolves: spreads the workload over something that
   * takes its own time, e.g. `rolling.reached(…)`. Default: no wait.
   */
  pace?: (index: number) => Promise<void>;
}

/** Which jobs get a follower of `GET /jobs/:id/events` (see `followJobEvents`), and for how long. */
export interface FollowPlan {
  /** Share of the order and approval jobs followed from their acceptance, 0–1. */
  share: number;
  /** A follower that has not seen its job settle gives up this long after the job was accepted (ms). Default 180000. */
  forMs?: number;
}

/** Which jobs the workload asks to cancel, and when. */
export interface CancelPlan {
  /**
   * Share of the jobs, approvals and checkouts asked to cancel, 0–1 (a
   * checkout cannot be: it must be refused with a 409).
   */
  share: number;
  /** Pause between the job's acceptance and the request, drawn from [min, max] (ms). Default [0, 1000]. */
  delayMs?: [number, number];
  /** Share of those asked a second time, after another such pause: a cancel is idempotent. Default 0.25. */
  repeat?: number;
}

/** Defaults of `CancelPlan`. */
export const CANCEL_DEFAULTS = { delayMs: [0, 1_000], repeat: 0.25 } as const;

export interface WorkloadResult {
  /** Workflow ids the API accepted. */
  accepted: string[];
  byKind: Record<WorkKind, number>;
  webhooks: WebhookTally;
  /** Requests that never got an acceptable answer. */
  failures: string[];
  /** Every cancel request's answer, in the order they came. */
  cancels: CancelAnswer[];
  /** The approval webhooks of each approval job, as their senders saw them. */
  approvals: ApprovalObservation[];
  /**
   * Attempts that failed on the wire (a connection error or reset, a
   * timeout, an event stream cut short) or with a `5xx` other than a `503`
   * with `Retry-After`; each was retried.
   */
  failedRequests: FailedRequests;
  /** What each follower of a job's event stream received (with `follow`). */
  streams: StreamObservation[];
}

const SKUS = Array.from({ length: 40 }, (_, i) => `sku-${i + 41}`);

/** An approval webhook's last answer is final unless the API could not say (unreachable, 5xx, 429). */
const retryable = (status: number) => status === 0 || status === 429 || status >= 500;

/**
 * Starts `count` workflows of a random mix through the API, with approvals
 * answered by signed webhooks, and (with `cancel`) asks a share of the jobs
 * to stop at random moments, recording every answer for the invariants.
 */
export async function runWorkload(opts: WorkloadOptions): Promise<WorkloadResult> {
  const mix = { job: 40, approval: 25, checkout: 20, quote: 15, ...opts.mix };
  const kinds = (Object.entries(mix) as [WorkKind, number][]).flatMap(
    ([k, n]) => Array(n).fill(k) as WorkKind[],
  );
  const retryForMs = opts.retryForMs ?? 60_000;
  const cancelShare = opts.cancel?.share ?? 0;
  const [delayMin, delayMax] = opts.cancel?.delayMs ?? CANCEL_DEFAULTS.delayMs;
  const repeatShare = opts.cancel?.repeat ?? CANCEL_DEFAULTS.repeat;
  const result: WorkloadResult = {
    accepted: [],
    byKind: { job: 0, approval: 0, checkout: 0, quote: 0 },
    webhooks: { accepted: 0, duplicate: 0, rejected: 0 },
    failures: [],
    cancels: [],
    approvals: [],
    failedRequests: noFailedRequests(),
    streams: [],
  };
  const tally = result.failedRequests;
  /** `Authorization` for a request to `path`: a user's routes take only that user's token. */
  const authorization = async (path: string) => {
    const user = /^\/users\/([^/]+)\//.exec(path)?.[1];
    const token =
      user === undefined
        ? await opts.token(WORKLOAD_CALLER.sub, { scope: WORKLOAD_CALLER.scope })
        : await opts.token(decodeURIComponent(user));
    return `Bearer ${token}`;
  };
  /** POSTs `body` (JSON, or none) to `path` with its token and `headers`, retried as `persist` does. */
  const post = async (path: string, body?: unknown, headers: Record<string, string> = {}) =>
    persist(
      `${opts.apiUrl}${path}`,
      {
        method: "POST",
        headers: {
          ...(body === undefined ? {} : { "content-type": "application/json" }),
          ...headers,
          authorization: await authorization(path),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      },
      retryForMs,
      tally,
    );
  const get = async (path: string) =>
    persist(
      `${opts.apiUrl}${path}`,
      { headers: { authorization: await authorization(path) } },
      retryForMs,
      tally,
    );

  // Draw every item's parameters up front so the run depends only on the seed.
  const plan = Array.from({ length: opts.count }, (_, i) => ({
    i,
    kind: pick(opts.rng, kinds),
    sku: pick(opts.rng, SKUS),
    qty: between(opts.rng, 1, 3),
    approve: opts.rng() < 0.8,
    declined: opts.rng() < (opts.declineShare ?? 0),
    cancel: opts.rng() < cancelShare,
    // When the cancel comes after the job's acceptance, and when a second one does.
    cancelAfterMs: [between(opts.rng, delayMin, delayMax), between(opts.rng, delayMin, delayMax)] as const,
    again: opts.rng() < repeatShare,
    // An approval that is canceled races its webhooks: one or two (the second approves or rejects
    // at random), each after its own pause within the cancel's window.
    secondWebhook: opts.rng() < 0.5,
    secondApproves: opts.rng() < 0.5,
    webhookAfterMs: [between(opts.rng, delayMin, delayMax), between(opts.rng, delayMin, delayMax)] as const,
  }));
  type Item = (typeof plan)[number];
  // Drawn after the plan, so that following streams changes none of the plan's choices.
  const followed = plan.map(() => (opts.follow ? opts.rng() < opts.follow.share : false));
  const followForMs = opts.follow?.forMs ?? 180_000;
  /** Followers run beside the lanes, from a job's acceptance until it settles. */
  const followers: Promise<void>[] = [];
  const follow = (item: Item, jobId: string) => {
    if (!followed[item.i]) return;
    const run = async () => {
      result.streams.push(
        await followJobEvents({
          apiUrl: opts.apiUrl,
          jobId,
          authorization: () => authorization("/jobs"),
          deadline: Date.now() + followForMs,
          failures: tally,
        }),
      );
    };
    followers.push(run().catch((error: unknown) => void result.failures.push((error as Error).message)));
  };

  /** Asks `jobId` to stop after `afterMs`, and records the answer (and for a 202, what GET /jobs/:id then says). */
  const cancel = async (jobId: string, afterMs: number) => {
    await Bun.sleep(afterMs);
    const res = await post(`/jobs/${jobId}/cancel`, { reason: "chaos" });
    const details = (res.body.error as { details?: { stage?: unknown; outcome?: unknown } } | undefined)
      ?.details;
    const answer: CancelAnswer = { job_id: jobId, status: res.status };
    if (res.retried.length > 0) answer.retried = res.retried;
    if (typeof details?.stage === "string") answer.stage = details.stage;
    if (typeof details?.outcome === "string") answer.outcome = details.outcome;
    if (res.status === 202) answer.seen = String((await get(`/jobs/${jobId}`)).body.status);
    result.cancels.push(answer);
    if (![200, 202, 404, 409].includes(res.status))
      throw new Error(`cancel ${jobId}: ${res.status} ${JSON.stringify(res.body)}`);
  };
  /** Cancel requests run beside the lanes, so a lane goes on submitting while they wait for their moment. */
  const followups: Promise<void>[] = [];
  const askToCancel = (item: Item, jobId: string) => {
    if (!item.cancel) return;
    const run = async () => {
      await cancel(jobId, item.cancelAfterMs[0]);
      if (item.again) await cancel(jobId, item.cancelAfterMs[1]);
    };
    followups.push(run().catch((error: unknown) => void result.failures.push((error as Error).message)));
  };

  /**
   * Delivers one approval webhook after `afterMs` like a real sender (the
   * same `webhook-id` on every attempt), retrying only while the API cannot
   * answer: a 409 (the approval was settled otherwise, or canceled) is final.
   */
  const deliver = async (orderId: string, webhookId: string, approved: boolean, afterMs: number) => {
    await Bun.sleep(afterMs);
    const url = `${opts.apiUrl}/webhooks/approval/${orderId}`;
    const body = JSON.stringify({ approved, approver: "workload" });
    const deadline = Date.now() + retryForMs;
    let pause = 100;
    for (let n = 1; ; n++) {
      // Signed afresh on every attempt, as a real sender does.
      const answer = await attempt(
        url,
        { method: "POST", headers: webhookHeaders(opts.webhookSecret, body, webhookId, new Date()), body },
        tally,
        10_000,
      );
      const status = answer.status;
      if (!retryable(status) || Date.now() > deadline) {
        const delivery: ApprovalDelivery = { webhook_id: webhookId, approved, status };
        if (status === 200) {
          delivery.duplicate = (JSON.parse(answer.text || "{}") as { duplicate?: boolean }).duplicate;
          result.webhooks[delivery.duplicate ? "duplicate" : "accepted"]++;
        } else result.webhooks.rejected++;
        result.webhooks.rejected += n - 1;
        return { delivery, body: answer.text };
      }
      if (answer.waitMs !== undefined) await Bun.sleep(answer.waitMs);
      else {
        await Bun.sleep(pause);
        pause = Math.min(pause * 2, 1_000);
      }
    }
  };

  const one = async (item: Item) => {
    const id = `${opts.prefix}-${item.i}`;
    const items = [{ sku: item.sku, qty: item.qty }];
    switch (item.kind) {
      case "job": {
        const res = await post("/jobs", {
          order_id: id,
          items,
          ...(item.declined ? { payment_source: DECLINED_SOURCE } : {}),
        });
        if (res.status !== 202) throw new Error(`job ${id}: ${res.status} ${JSON.stringify(res.body)}`);
        result.accepted.push(`order:${id}`);
        follow(item, `order:${id}`);
        askToCancel(item, `order:${id}`);
        return;
      }
      case "approval": {
        const res = await post(`/orders/${id}/approve-and-ship`);
        if (res.status !== 202) throw new Error(`approval ${id}: ${res.status} ${JSON.stringify(res.body)}`);
        const jobId = `ship:${id}`;
        result.accepted.push(jobId);
        follow(item, jobId);
        askToCancel(item, jobId);
        const hooks = [
          { approved: item.approve, afterMs: item.cancel ? item.webhookAfterMs[0] : 0 },
          ...(item.cancel && item.secondWebhook
            ? [{ approved: item.secondApproves, afterMs: item.webhookAfterMs[1] }]
            : []),
        ];
        const sent = await Promise.all(
          hooks.map((h, n) => deliver(id, `msg_${opts.prefix}_${item.i}_${n}`, h.approved, h.afterMs)),
        );
        result.approvals.push({ job_id: jobId, deliveries: sent.map((s) => s.delivery) });
        // Without a cancel or a second opinion, the one webhook must have been taken.
        const only = sent.length === 1 && !item.cancel ? sent[0] : undefined;
        if (only && only.delivery.status !== 200)
          throw new Error(`approval webhook ${id}: ${only.delivery.status} ${only.body}`);
        const unanswered = sent.find((s) => s.delivery.status !== 200 && s.delivery.status !== 409);
        if (unanswered)
          throw new Error(`approval webhook ${id}: ${unanswered.delivery.status} ${unanswered.body}`);
        return;
      }
      case "checkout": {
        const res = await post(
          `/users/${opts.prefix}-user/orders`,
          { cart: items },
          { "idempotency-key": id },
        );
        if (res.status !== 201 && res.status !== 202)
          throw new Error(`checkout ${id}: ${res.status} ${JSON.stringify(res.body)}`);
        const jobId = `checkout:${opts.prefix}-user:${id}`;
        result.accepted.push(jobId);
        askToCancel(item, jobId);
        return;
      }
      case "quote": {
        const res = await post(
          "/price-quote",
          { sku: item.sku, qty: item.qty + item.i * 10, customer_id: opts.prefix },
          { prefer: "wait=0.05" },
        );
        if (res.status !== 200 && res.status !== 202)
          throw new Error(`quote ${id}: ${res.status} ${JSON.stringify(res.body)}`);
        result.accepted.push(String(res.body.quote_id));
        return;
      }
    }
  };

  let next = 0;
  const lane = async () => {
    while (next < plan.length) {
      const item = plan[next++] as Item;
      await opts.pace?.(item.i);
      result.byKind[item.kind]++;
      try {
        await one(item);
      } catch (error) {
        result.failures.push((error as Error).message);
      }
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency ?? 8 }, lane));
  await Promise.all(followups);
  await Promise.all(followers);
  return result;
}

/**
 * What the API says after a run, read as an operator, for the invariant
 * checks: the status of every job asked to cancel or followed (`statuses`),
 * and the job list; with the run's cancels and approval answers. A request
 * that failed on the way is counted in the run's `failedRequests`.
 */
export async function observeRun(
  apiUrl: string,
  token: TokenSource,
  work: WorkloadResult,
  retryForMs = 60_000,
): Promise<{ observations: Observations; statuses: Record<string, string> }> {
  const asked = [...new Set(work.cancels.map((c) => c.job_id))];
  const followed = work.streams.map((s) => s.job_id);
  const statuses = await readJobStatuses(
    apiUrl,
    token,
    [...new Set([...asked, ...followed])],
    retryForMs,
    work.failedRequests,
  );
  return {
    statuses,
    observations: {
      cancels: work.cancels,
      approvals: work.approvals,
      jobStatuses: Object.fromEntries(asked.map((id) => [id, statuses[id] as string])),
      listed: await readJobList(apiUrl, token, retryForMs, work.failedRequests),
    },
  };
}

/**
 * `GET /jobs/:id`'s `status` of each job, as `token`'s operator sees it,
 * retried like the workload's requests: for the check that the API says
 * `canceled` of exactly the jobs whose workflow stopped on a cancel.
 */
export async function readJobStatuses(
  apiUrl: string,
  token: TokenSource,
  ids: string[],
  retryForMs = 60_000,
  failures?: FailedRequests,
): Promise<Record<string, string>> {
  const authorization = `Bearer ${await token(WORKLOAD_CALLER.sub, { scope: WORKLOAD_CALLER.scope })}`;
  const statuses = await Promise.all(
    ids.map(async (id) => {
      const res = await persist(`${apiUrl}/jobs/${id}`, { headers: { authorization } }, retryForMs, failures);
      return [id, String(res.body.status ?? res.status)] as const;
    }),
  );
  return Object.fromEntries(statuses);
}

/** One job as `GET /jobs` listed it. */
export interface ListedJob {
  job_id: string;
  status: string;
  started_at?: string;
}

/**
 * Every job `GET /jobs` lists to the workload's caller (an operator: every
 * caller's), following `next_cursor` 100 at a time, in the order listed.
 */
export async function readJobList(
  apiUrl: string,
  token: TokenSource,
  retryForMs = 60_000,
  failures?: FailedRequests,
): Promise<ListedJob[]> {
  const authorization = `Bearer ${await token(WORKLOAD_CALLER.sub, { scope: WORKLOAD_CALLER.scope })}`;
  const jobs: ListedJob[] = [];
  let cursor: string | undefined;
  do {
    const url = `${apiUrl}/jobs?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
    const res = await persist(url, { headers: { authorization } }, retryForMs, failures);
    if (res.status !== 200) throw new Error(`GET /jobs: ${res.status} ${JSON.stringify(res.body)}`);
    jobs.push(...(res.body.jobs as ListedJob[]));
    cursor = res.body.next_cursor as string | undefined;
  } while (cursor);
  return jobs;
}

/** Waits until none of `ids` is pending on the server (or the deadline passes); returns the ones still pending. */
export async function waitQuiescent(
  resonateUrl: string,
  ids: string[],
  timeoutMs: number,
): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  let pending = ids;
  for (;;) {
    const states = await Promise.all(
      pending.map(async (id) => {
        try {
          return [id, (await getPromise(resonateUrl, id))?.state ?? "missing"] as const;
        } catch {
          return [id, "pending"] as const;
        }
      }),
    );
    pending = states.filter(([, s]) => s === "pending").map(([id]) => id);
    if (pending.length === 0 || Date.now() > deadline) return pending;
    await Bun.sleep(250);
  }
}
