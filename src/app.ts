import { type AnyElysia, Elysia } from "elysia";
import { TRACING_OFF, type Tracing } from "../core/observability/tracing.ts";
import { callersFirst } from "./auth/index.ts";
import type { CallerAuth } from "./auth/service.ts";
import { type BaselineQuote, benchRoutes } from "./bench/index.ts";
import type { Deps } from "./deps.ts";
import { docsRoutes } from "./docs/index.ts";
import { errorHandler } from "./errors.ts";
import { healthRoutes } from "./health/index.ts";
import { httpRules } from "./http-rules.ts";
import { jobRoutes } from "./jobs/index.ts";
import { metricsRoutes } from "./metrics/index.ts";
import { observeRequests, traceRequests } from "./observability/http.ts";
import { orderRoutes } from "./orders/index.ts";
import { quoteRoutes } from "./quotes/index.ts";
import { WaitGate } from "./quotes/service.ts";
import { userRoutes } from "./users/index.ts";
import { webhookRoutes } from "./webhooks/index.ts";
import { countRefusedDelivery } from "./webhooks/service.ts";

const DOCUMENT_INFO = {
  title: "resonate-bun-edge",
  version: "0.1.0",
  description: "Durable workflows behind HTTP: every route starts, awaits or reads a Resonate workflow.",
};

/** The HTTP API, built from its dependencies; `src/main.ts` is what listens. */
export function createApp(
  deps: Deps,
  opts: {
    webhookSecret: string;
    /** Checks the callers of every route but the webhooks (signed), health, docs and metrics. */
    auth: CallerAuth;
    quoteGate?: WaitGate;
    /** Mounts the benchmark routes (`BENCH_ROUTES=1`), with the in-process quote they compare against. */
    bench?: BaselineQuote;
    /** A span per request, continuing its `traceparent`, when tracing is on. */
    tracing?: Tracing;
  },
) {
  const quoteGate = opts.quoteGate ?? new WaitGate(deps.config.quoteMaxWaiting);
  // The document is derived from the whole app, once it is built.
  let whole: AnyElysia | undefined;
  const app = new Elysia()
    .use(traceRequests(opts.tracing ?? TRACING_OFF))
    // First: every request gets its id and context before any other hook can answer it.
    .use(observeRequests(deps.metrics, deps.log))
    // A process that is stopping asks each client to leave its kept-alive connection, so none is reset under a request.
    .onRequest(({ set }) => {
      if (deps.draining.aborted) set.headers.connection = "close";
    })
    // Before the rules that read bodies: a checked route's caller is verified before its body is read.
    .use(callersFirst(opts.auth, () => whole as AnyElysia))
    .use(
      httpRules(
        () => whole as AnyElysia,
        deps.config,
        (count) => deps.metrics.requestsInFlight.set(count),
      ),
    )
    // Before the error handler, which answers and ends the chain: a refused webhook delivery is counted by outcome.
    .onError({ as: "global" }, ({ code, error, route }) => countRefusedDelivery(deps, route, code, error))
    .use(errorHandler)
    .use(docsRoutes(() => whole as AnyElysia, DOCUMENT_INFO))
    .use(metricsRoutes(deps))
    .use(healthRoutes(deps))
    .use(jobRoutes(deps, opts.auth))
    .use(orderRoutes(deps, opts.auth))
    .use(webhookRoutes(deps, opts.webhookSecret))
    .use(quoteRoutes(deps, opts.auth, quoteGate))
    .use(userRoutes(deps, opts.auth));
  whole = opts.bench ? app.use(benchRoutes(opts.auth, quoteGate, opts.bench)) : app;
  return app;
}

export type App = ReturnType<typeof createApp>;
