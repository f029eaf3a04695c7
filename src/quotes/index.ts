import { Elysia } from "elysia";
import { callers } from "../auth/index.ts";
import type { CallerAuth } from "../auth/service.ts";
import type { Deps } from "../deps.ts";
import { linkTo, models, ResponseHeaders, unavailableResponse } from "../models.ts";
import { waitBudgetMs } from "../prefer.ts";
import { untilSettled } from "../resonate/settled.ts";
import { QuoteModels } from "./model.ts";
import { QuoteCache, requestQuote, settledQuote, WaitGate } from "./service.ts";

/** Finished quotes kept in memory for repeated requests. */
const QUOTE_CACHE_ENTRIES = 10_000;

/** From an answer that names a quote to reading it again. */
const readQuote = {
  GetQuote: linkTo("getQuote", { "path.quote_id": "$response.body#/quote_id" }, "read this quote again"),
};

/** A quote still being computed: where to read it, and when to ask. */
const pendingResponse = {
  description: "The quote is still being computed; read it from Location",
  headers: { ...ResponseHeaders.location, ...ResponseHeaders.retryAfter },
  links: readQuote,
};

/**
 * Synchronous with a deadline: `POST /price-quote` answers 200 with the
 * quote, or 202 + Location once the deadline passes (the work goes on),
 * 503 when too many requests already wait, 504 when the quote timed out.
 */
export const quoteRoutes = (
  deps: Deps,
  auth: CallerAuth,
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
    .use(models)
    .use(callers(auth))
    .post(
      "",
      async ({ body, headers, request, set, status }) => {
        const budget = waitBudgetMs(
          headers.prefer ?? null,
          deps.config.quoteDeadlineMs,
          deps.config.quoteMaxWaitMs,
        );
        // A process that begins to stop answers as things are: the quote, or 202 and its Location.
        const waiting = AbortSignal.any([request.signal, deps.draining]);
        const outcome = await requestQuote(deps, gate, cache, body, budget, waiting);
        return outcome.kind === "done" ? outcome.body : status(202, pending(outcome.id, set));
      },
      {
        parse: "json",
        body: "QuoteRequest",
        headers: QuoteModels.headers,
        response: {
          200: "Quote",
          202: "QuotePending",
          400: "Error",
          415: "Error",
          422: "Error",
          503: "Error",
          504: "Error",
        },
        caller: true,
        detail: {
          operationId: "requestQuote",
          summary: "Price quote within a deadline",
          tags: ["quotes"],
          responses: {
            200: { description: "The quote", links: readQuote },
            202: pendingResponse,
            503: unavailableResponse,
          },
        },
      },
    )
    .get(
      "/:quote_id",
      async ({ params, headers, request, set, status }) => {
        const budget = waitBudgetMs(headers.prefer ?? null, 0, deps.config.quoteMaxWaitMs);
        let outcome = await settledQuote(deps, cache, params.quote_id);
        if (budget > 0) {
          set.headers["preference-applied"] = `wait=${budget / 1000}`;
          if (outcome.kind === "pending") {
            // A process that begins to stop answers at once, with the quote as it is then.
            const waiting = AbortSignal.any([request.signal, AbortSignal.timeout(budget), deps.draining]);
            await untilSettled(deps, params.quote_id, waiting);
            if (!request.signal.aborted) outcome = await settledQuote(deps, cache, params.quote_id);
          }
        }
        return outcome.kind === "done" ? outcome.body : status(202, pending(outcome.id, set));
      },
      {
        params: QuoteModels.params,
        headers: QuoteModels.readHeaders,
        response: { 200: "Quote", 202: "QuotePending", 404: "Error", 422: "Error", 504: "Error" },
        caller: true,
        detail: {
          operationId: "getQuote",
          summary: "A quote that was still pending, at once or with Prefer: wait=<s> once it is ready",
          tags: ["quotes"],
          responses: { 202: pendingResponse },
        },
      },
    );
};
