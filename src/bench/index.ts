import { Elysia } from "elysia";
import { callers } from "../auth/index.ts";
import type { CallerAuth } from "../auth/service.ts";
import { ErrorBody, unprocessable } from "../errors.ts";
import { QuoteModels } from "../quotes/model.ts";
import type { WaitGate } from "../quotes/service.ts";
import { BenchModels } from "./model.ts";
import { type BaselineQuote, baselineBody, memoryStats } from "./service.ts";

export type { BaselineQuote };

/**
 * Benchmark-only routes, mounted when BENCH_ROUTES=1 (the load tool sets it):
 * - `POST /bench/price-quote`: the same quote computed in this process from
 *   the seeded price list, with no durability: the baseline the durable
 *   route is measured against;
 * - `GET /bench/stats`: this process's memory after a full GC, and how many
 *   quote requests are waiting, to check that load leaves nothing behind.
 * Callers are checked as on the quote route, so the baseline pays the same.
 */
export const benchRoutes = (auth: CallerAuth, gate: WaitGate, baseline: BaselineQuote) =>
  new Elysia({ name: "bench", prefix: "/bench" })
    .use(callers(auth))
    .post(
      "/price-quote",
      ({ body }) => {
        const quote = baselineBody(baseline, body);
        if (!quote) throw unprocessable("unknown_sku", `unknown sku ${body.sku}`);
        return quote;
      },
      {
        body: QuoteModels.request,
        response: { 200: QuoteModels.quote, 422: ErrorBody },
        caller: true,
        detail: { hide: true },
      },
    )
    .get("/stats", () => memoryStats(gate), {
      response: { 200: BenchModels.stats },
      caller: true,
      detail: { hide: true },
    });
