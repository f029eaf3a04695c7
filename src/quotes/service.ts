import type { Quote } from "../../workers/pricing.ts";
import { type Deps, readPromise } from "../deps.ts";
import { HttpError, notFound, unavailable, unprocessable } from "../errors.ts";
import { errorMessage } from "../jobs/service.ts";
import { decodeValue } from "../shared/durable.ts";
import type { QuoteBody, QuoteRequest } from "./model.ts";

const QUOTE_ID = /^quote:[0-9a-f]{32}$/;

/** Same request within one validity window → same id → the stored quote. */
export function quoteId(req: QuoteRequest, now: number, validityMs: number): string {
  const window = Math.floor(now / validityMs);
  const key = JSON.stringify([req.sku, req.qty, req.customer_id ?? null, window]);
  return `quote:${new Bun.CryptoHasher("sha256").update(key).digest("hex").slice(0, 32)}`;
}

/** How long to wait: `Prefer: wait=<seconds>` (RFC 7240) within the cap, else the configured deadline. */
export function waitBudgetMs(prefer: string | null, deadlineMs: number, capMs: number): number {
  const match = prefer ? /(?:^|[,;\s])wait\s*=\s*"?(\d+(?:\.\d+)?)"?/i.exec(prefer) : null;
  if (!match?.[1]) return deadlineMs;
  const asked = Math.round(Number(match[1]) * 1000);
  return asked > 0 ? Math.min(asked, capMs) : deadlineMs;
}

const money = (cents: number) => `${Math.trunc(cents / 100)}.${String(cents % 100).padStart(2, "0")}`;

function toBody(id: string, q: Quote): QuoteBody {
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
 * Starts (or joins) the quote workflow and waits for it up to `budgetMs`,
 * or until the client goes away. Past the budget the workflow goes on and
 * the caller answers 202; nothing is left waiting in this process except
 * the SDK's own subscription, which ends when the quote settles (at the
 * latest at its short timeout).
 */
export async function requestQuote(
  deps: Deps,
  gate: WaitGate,
  req: QuoteRequest,
  budgetMs: number,
  signal: AbortSignal,
): Promise<QuoteOutcome> {
  const leave = gate.enter();
  try {
    const id = quoteId(req, deps.now(), deps.config.quoteValidityMs);
    const handle = await deps.launcher.begin<Quote>(
      id,
      "compute_quote",
      [req.sku, req.qty, ...(req.customer_id ? [req.customer_id] : [])],
      { target: deps.targets.pricing, timeout: deps.config.quoteTimeoutMs },
    );
    let timer: ReturnType<typeof setTimeout> | undefined;
    let onAbort: (() => void) | undefined;
    const expired = new Promise<"expired">((resolve) => {
      timer = setTimeout(() => resolve("expired"), budgetMs);
      onAbort = () => resolve("expired");
      signal.addEventListener("abort", onAbort, { once: true });
    });
    try {
      const first = await Promise.race([
        handle.result().then(
          (value) => ({ ok: true as const, value }),
          (error: unknown) => ({ ok: false as const, error }),
        ),
        expired,
      ]);
      if (first === "expired") return { kind: "pending", id };
      if (first.ok) return { kind: "done", body: toBody(id, first.value) };
      return await settledQuote(deps, id);
    } finally {
      clearTimeout(timer);
      if (onAbort) signal.removeEventListener("abort", onAbort);
    }
  } finally {
    leave();
  }
}

/** Reads a quote without waiting. */
export async function settledQuote(deps: Deps, id: string): Promise<QuoteOutcome> {
  if (!QUOTE_ID.test(id)) throw notFound(`quote ${id}`);
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
