import { Elysia, t } from "elysia";
import { ErrorBody, unprocessable } from "../errors.ts";
import type { Quote } from "../functions.ts";
import { QuoteModels } from "../quotes/model.ts";
import type { WaitGate } from "../quotes/service.ts";

/** The same quote computed in this process, undefined for an unknown sku (the pricing group's `baselineQuote`). */
export type BaselineQuote = (sku: string, qty: number, customer?: string) => Quote | undefined;

const money = (cents: number) => `${Math.trunc(cents / 100)}.${String(cents % 100).padStart(2, "0")}`;

/**
 * Benchmark-only routes, mounted when BENCH_ROUTES=1 (the load tool sets it):
 * - `POST /bench/price-quote`: the same quote computed in this process from
 *   the seeded price list, with no durability: the baseline the durable
 *   route is measured against;
 * - `GET /bench/stats`: this process's memory after a full GC, and how many
 *   quote requests are waiting, to check that load leaves nothing behind.
 */
export const benchRoutes = (gate: WaitGate, baseline: BaselineQuote) =>
  new Elysia({ name: "bench", prefix: "/bench" })
    .post(
      "/price-quote",
      ({ body }) => {
        const quote = baseline(body.sku, body.qty, body.customer_id);
        if (!quote) throw unprocessable("unknown_sku", `unknown sku ${body.sku}`);
        return {
          quote_id: `baseline:${body.sku}:${body.qty}:${body.customer_id ?? ""}`,
          sku: quote.sku,
          qty: quote.qty,
          customer_id: quote.customer_id,
          unit_price: money(quote.unit_price_cents),
          discount_bps: quote.discount_bps,
          price: money(quote.price_cents),
          price_cents: quote.price_cents,
          currency: quote.currency,
        };
      },
      {
        body: QuoteModels.request,
        response: { 200: QuoteModels.quote, 422: ErrorBody },
        detail: { hide: true },
      },
    )
    .get(
      "/stats",
      () => {
        // A full collection first where the runtime offers one (Bun), so the heap figure is what is live.
        globalThis.Bun?.gc(true);
        const mem = process.memoryUsage();
        return { rss: mem.rss, heap_used: mem.heapUsed, waiting: gate.waiting };
      },
      {
        response: { 200: t.Object({ rss: t.Number(), heap_used: t.Number(), waiting: t.Number() }) },
        detail: { hide: true },
      },
    );
