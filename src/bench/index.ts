import { Elysia, t } from "elysia";
import { catalogue, discountBps } from "../../workers/db.ts";
import { quotePrice } from "../../workers/pricing.ts";
import { ErrorBody, unprocessable } from "../errors.ts";
import { QuoteModels } from "../quotes/model.ts";
import type { WaitGate } from "../quotes/service.ts";

const prices = new Map(catalogue().map((p) => [p.sku, p.unit_price_cents]));
const money = (cents: number) => `${Math.trunc(cents / 100)}.${String(cents % 100).padStart(2, "0")}`;

/**
 * Benchmark-only routes, mounted when BENCH_ROUTES=1 (the load tool sets it):
 * - `POST /bench/price-quote`: the same quote computed in this process from
 *   the seeded price list, with no durability: the baseline the durable
 *   route is measured against;
 * - `GET /bench/stats`: this process's memory after a full GC, and how many
 *   quote requests are waiting, to check that load leaves nothing behind.
 */
export const benchRoutes = (gate: WaitGate) =>
  new Elysia({ name: "bench", prefix: "/bench" })
    .post(
      "/price-quote",
      ({ body }) => {
        const unit = prices.get(body.sku);
        if (unit === undefined) throw unprocessable("unknown_sku", `unknown sku ${body.sku}`);
        const bps = discountBps(body.qty, body.customer_id);
        const cents = quotePrice(unit, body.qty, bps);
        return {
          quote_id: `baseline:${body.sku}:${body.qty}:${body.customer_id ?? ""}`,
          sku: body.sku,
          qty: body.qty,
          customer_id: body.customer_id ?? null,
          unit_price: money(unit),
          discount_bps: bps,
          price: money(cents),
          price_cents: cents,
          currency: "USD",
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
