import { createHash } from "node:crypto";
import { Pricing, type Quote } from "../../core/functions.ts";
import { decodeValue } from "../../core/resonate/durable.ts";
import { type Deps, readPromise } from "../deps.ts";
import { errorMessage, HttpError, notFound, unavailable, unprocessable } from "../errors.ts";
import { touchPromise, touchWorkflow } from "../observability/request-context.ts";
import type { QuoteBody, QuoteRequest } from "./model.ts";

const QUOTE_ID = /^quote:[0-9a-f]{32}$/;

/** Same request within one validity window → same id → the stored quote. */
export function quoteId(req: QuoteRequest, now: number, validityMs: number): string {
  const window = Math.floor(now / validityMs);
  const key = JSON.stringify([req.sku, req.qty, req.customer_id ?? null, window]);
  return `quote:${createHash("sha256").update(key).digest("hex").slice(0, 32)}`;
}

const money = (cents: number) => `${Math.trunc(cents / 100)}.${String(cents % 100).padStart(2, "0")}`;

/** The answer of the quote routes for a computed quote. */
export function toBody(id: string, q: Quote): QuoteBody {
  return {
    quote_id: id,
    sku: q.sku,
    qty: q.qty,
    customer_id: q.customer_id,
    unit_price: money(q.unit_price_cents),
    discount_bps: q.discount_bps,
    price: money(q.price_cents),
    price_cents: q.price_cents,
    currency: q.currency,
  };
}

export type QuoteOutcome = { kind: "done"; body: QuoteBody } | { kind: "pending"; id: string };

/**
 * Finished quotes by id. A quote's id names its request and validity window
 * and its value never changes once the workflow resolved, so identical
 * requests in the window are answered from here without a round trip to
 * Resonate. Bounded (oldest first out), and entries leave with their window.
 */
export class QuoteCache {
  readonly #entries = new Map<string, { body: QuoteBody; expiresAt: number }>();
  constructor(
    readonly maxEntries: number,
    readonly ttlMs: number,
  ) {}
  get size(): number {
    return this.#entries.size;
  }
  get(id: string, now: number): QuoteBody | undefined {
    const hit = this.#entries.get(id);
    if (!hit) return undefined;
    if (hit.expiresAt <= now) {
      this.#entries.delete(id);
      return undefined;
    }
    return hit.body;
  }
  set(id: string, body: QuoteBody, now: number): void {
    this.#entries.delete(id);
    this.#entries.set(id, { body, expiresAt: now + this.ttlMs });
    if (this.#entries.size > this.maxEntries) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
  }
}

/** Counts requests that are waiting on a quote, to shed load instead of queueing. */
export class WaitGate {
  #waiting = 0;
  constructor(readonly limit: number) {}
  get waiting(): number {
    return this.#waiting;
  }
  enter(): () => void {
    if (this.#waiting >= this.limit)
      throw unavailable(`too many quote requests waiting (${this.limit})`, 1, "overloaded");
    this.#waiting++;
    let left = false;
    return () => {
      if (!left) this.#waiting--;
      left = true;
    };
  }
}

/**
 * Starts (or joins) the quote workflow and waits for it, all within
 * `budgetMs` from the moment the request arrived, or until the client goes
 * away. If the invocation is durably created in time but not finished, the
 * caller answers 202 and the workflow goes on; if even the creation is not
 * acknowledged in time, the request is shed (503) rather than answered late
 * (the creation may still land; the same request again joins it). Nothing
 * is left waiting in this process except the SDK's own subscription, which
 * ends when the quote settles (at the latest at its short timeout).
 */
export async function requestQuote(
  deps: Deps,
  gate: WaitGate,
  cache: QuoteCache,
  req: QuoteRequest,
  budgetMs: number,
  signal: AbortSignal,
): Promise<QuoteOutcome> {
  const now = deps.now();
  const id = quoteId(req, now, deps.config.quoteValidityMs);
  // Named on the request's log line even when the cache answers.
  touchWorkflow(id);
  const cached = cache.get(id, now);
  if (cached) {
    deps.metrics.quotesCached.inc();
    return { kind: "done", body: cached };
  }
  let leave: () => void;
  try {
    leave = gate.enter();
  } catch (error) {
    deps.metrics.quotesShed.inc({ reason: "max_waiting" });
    throw error;
  }
  let timer: Timer | undefined;
  let onAbort: (() => void) | undefined;
  const expired = new Promise<"expired">((resolve) => {
    timer = setTimeout(() => resolve("expired"), budgetMs);
    onAbort = () => resolve("expired");
    signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    const begun = deps.launcher.begin(
      Pricing.computeQuote,
      id,
      [req.sku, req.qty, req.customer_id ?? null, deps.config.pricingDelayMs],
      { target: deps.targets.pricing, timeout: deps.config.quoteTimeoutMs },
    );
    const started = await Promise.race([begun, expired]);
    if (started === "expired") {
      begun.catch(() => {});
      deps.metrics.quotesShed.inc({ reason: "start_deadline" });
      throw unavailable(
        "the quote could not be started within the deadline; retry the same request",
        1,
        "overloaded",
      );
    }
    const first = await Promise.race([
      started.result().then(
        (value) => ({ ok: true as const, value }),
        (error: unknown) => ({ ok: false as const, error }),
      ),
      expired,
    ]);
    if (first === "expired") {
      deps.metrics.quotesPending.inc();
      return { kind: "pending", id };
    }
    if (first.ok) {
      const body = toBody(id, first.value);
      cache.set(id, body, deps.now());
      return { kind: "done", body };
    }
    return await settledQuote(deps, cache, id);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal.removeEventListener("abort", onAbort);
    leave();
  }
}

/** Reads a quote without waiting. */
export async function settledQuote(deps: Deps, cache: QuoteCache, id: string): Promise<QuoteOutcome> {
  if (!QUOTE_ID.test(id)) throw notFound(`quote ${id}`);
  touchPromise(id);
  const cached = cache.get(id, deps.now());
  if (cached) return { kind: "done", body: cached };
  const promise = await readPromise(deps, id, `quote ${id}`);
  switch (promise.state) {
    case "pending":
      return { kind: "pending", id };
    case "resolved":
      return {
        kind: "done",
        body: toBody(id, decodeValue<Quote>(promise.value?.data) as Quote),
      };
    case "rejected_timedout":
      throw new HttpError(
        504,
        "quote_timed_out",
        `quote ${id} was not computed in time; no pricing worker finished it`,
      );
    default: {
      const reason = errorMessage(decodeValue(promise.value?.data));
      throw unprocessable(/unknown sku/.test(reason) ? "unknown_sku" : "quote_failed", reason);
    }
  }
}
