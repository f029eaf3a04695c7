import { Elysia, t } from "elysia";
import type { Deps } from "../deps.ts";
import { ErrorBody } from "../errors.ts";
import { QuoteModels } from "./model.ts";
import { QuoteCache, requestQuote, settledQuote, WaitGate, waitBudgetMs } from "./service.ts";

/** Finished quotes kept in memory for repeated requests. */
const QUOTE_CACHE_ENTRIES = 10_000;

/**
 * Synchronous with a deadline: `POST /price-quote` answers 200 with the
 * quote, or 202 + Location once the deadline passes (the work goes on),
 * 503 when too many requests already wait, 504 when the quote timed out.
 */
export const quoteRoutes = (
  deps: Deps,
  gate: WaitGate = new WaitGate(deps.config.quoteMaxWaiting),
  cache: QuoteCache = new QuoteCache(QUOTE_CACHE_ENTRIES, deps.config.quoteValidityMs),
) => {
  /** Headers and body of a 202 for a quote that is still being computed. */
  const pending = (id: string, set: { headers: Record<string, string | number> }) => {
    set.headers.location = `/price-quote/${encodeURIComponent(id)}`;
    set.headers["retry-after"] = "1";
    return { quote_id: id, status: "pending" as const };
  };
  return new Elysia({ name: "quotes", prefix: "/price-quote" })
    .post(
      "",
      async ({ body, headers, request, set, status }) => {
        const budget = waitBudgetMs(
          headers.prefer ?? null,
          deps.config.quoteDeadlineMs,
          deps.config.quoteMaxWaitMs,
        );
        const outcome = await requestQuote(deps, gate, cache, body, budget, request.signal);
        return outcome.kind === "done" ? outcome.body : status(202, pending(outcome.id, set));
      },
      {
        body: QuoteModels.request,
        headers: t.Object({ prefer: t.Optional(t.String({ description: "wait=<seconds> (RFC 7240)" })) }),
        response: {
          200: QuoteModels.quote,
          202: QuoteModels.pending,
          422: ErrorBody,
          503: ErrorBody,
          504: ErrorBody,
        },
        detail: { summary: "Price quote within a deadline", tags: ["quotes"] },
      },
    )
    .get(
      "/:quote_id",
      async ({ params, set, status }) => {
        const outcome = await settledQuote(deps, cache, params.quote_id);
        return outcome.kind === "done" ? outcome.body : status(202, pending(outcome.id, set));
      },
      {
        params: QuoteModels.params,
        response: {
          200: QuoteModels.quote,
          202: QuoteModels.pending,
          404: ErrorBody,
          422: ErrorBody,
          504: ErrorBody,
        },
        detail: { summary: "A quote that was still pending", tags: ["quotes"] },
      },
    );
};
