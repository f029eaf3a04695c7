import { API_AUTH_DEFAULTS } from "../api-auth.ts";
import { getPromise } from "../protocol.ts";
import { sendWebhook } from "../webhooks.ts";
import type { WebhookTally } from "./invariants.ts";
import { between, pick } from "./rng.ts";

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
}

export interface WorkloadResult {
  /** Workflow ids the API accepted. */
  accepted: string[];
  byKind: Record<WorkKind, number>;
  webhooks: WebhookTally;
  /** Requests that never got an acceptable answer. */
  failures: string[];
}

const SKUS = Array.from({ length: 40 }, (_, i) => `sku-${i + 41}`);

/**
 * A client that keeps retrying until the API answers: connection errors,
 * 5xx and 503 are retried with backoff, as a real client of a service that
 * is being restarted would. Safe because every request carries its own id.
 */
async function persist(
  url: string,
  init: RequestInit,
  retryForMs: number,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const deadline = Date.now() + retryForMs;
  let pause = 50;
  let last = "";
  for (;;) {
    try {
      const res = await fetch(url, { ...init, signal: AbortSignal.timeout(15_000) });
      const text = await res.text();
      if (res.status < 500)
        return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
      last = `${res.status} ${text.slice(0, 200)}`;
    } catch (error) {
      last = (error as Error).message;
    }
    if (Date.now() > deadline)
      throw new Error(`${init.method} ${url}: gave up after ${retryForMs} ms: ${last}`);
    await Bun.sleep(pause);
    pause = Math.min(pause * 2, 1_000);
  }
}

/** Starts `count` workflows of a random mix through the API, with approvals answered by signed webhooks. */
export async function runWorkload(opts: WorkloadOptions): Promise<WorkloadResult> {
  const mix = { job: 40, approval: 25, checkout: 20, quote: 15, ...opts.mix };
  const kinds = (Object.entries(mix) as [WorkKind, number][]).flatMap(
    ([k, n]) => Array(n).fill(k) as WorkKind[],
  );
  const retryForMs = opts.retryForMs ?? 60_000;
  const result: WorkloadResult = {
    accepted: [],
    byKind: { job: 0, approval: 0, checkout: 0, quote: 0 },
    webhooks: { accepted: 0, duplicate: 0, rejected: 0 },
    failures: [],
  };
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
    );
  // Draw every item's parameters up front so the run depends only on the seed.
  const plan = Array.from({ length: opts.count }, (_, i) => ({
    i,
    kind: pick(opts.rng, kinds),
    sku: pick(opts.rng, SKUS),
    qty: between(opts.rng, 1, 3),
    approve: opts.rng() < 0.8,
  }));

  const one = async (item: (typeof plan)[number]) => {
    const id = `${opts.prefix}-${item.i}`;
    const items = [{ sku: item.sku, qty: item.qty }];
    switch (item.kind) {
      case "job": {
        const res = await post("/jobs", { order_id: id, items });
        if (res.status !== 202) throw new Error(`job ${id}: ${res.status} ${JSON.stringify(res.body)}`);
        result.accepted.push(`order:${id}`);
        return;
      }
      case "approval": {
        const res = await post(`/orders/${id}/approve-and-ship`);
        if (res.status !== 202) throw new Error(`approval ${id}: ${res.status} ${JSON.stringify(res.body)}`);
        result.accepted.push(`ship:${id}`);
        const deliveries = await sendWebhook({
          url: `${opts.apiUrl}/webhooks/approval/${id}`,
          secret: opts.webhookSecret,
          body: JSON.stringify({ approved: item.approve, approver: "workload" }),
          retries: 80,
          backoffMs: 100,
          maxBackoffMs: 1_000,
        });
        const last = deliveries.at(-1);
        if (last?.status === 200) {
          if ((JSON.parse(last.body) as { duplicate: boolean }).duplicate) result.webhooks.duplicate++;
          else result.webhooks.accepted++;
        } else {
          throw new Error(`approval webhook ${id}: ${last?.status} ${last?.body}`);
        }
        result.webhooks.rejected += deliveries.length - 1;
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
        result.accepted.push(`checkout:${opts.prefix}-user:${id}`);
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
      const item = plan[next++] as (typeof plan)[number];
      result.byKind[item.kind]++;
      try {
        await one(item);
      } catch (error) {
        result.failures.push((error as Error).message);
      }
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency ?? 8 }, lane));
  return result;
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
