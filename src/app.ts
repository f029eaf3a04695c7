import { openapi } from "@elysiajs/openapi";
import { Elysia } from "elysia";
import { type BaselineQuote, benchRoutes } from "./bench/index.ts";
import type { Deps } from "./deps.ts";
import { errorHandler } from "./errors.ts";
import { healthRoutes } from "./health/index.ts";
import { jobRoutes } from "./jobs/index.ts";
import { orderRoutes } from "./orders/index.ts";
import { quoteRoutes } from "./quotes/index.ts";
import { WaitGate } from "./quotes/service.ts";
import { userRoutes } from "./users/index.ts";
import { webhookRoutes } from "./webhooks/index.ts";

/** The HTTP API, built from its dependencies; `src/main.ts` is what listens. */
export function createApp(
  deps: Deps,
  opts: {
    webhookSecret: string;
    quoteGate?: WaitGate;
    /** Mounts the benchmark routes (`BENCH_ROUTES=1`), with the in-process quote they compare against. */
    bench?: BaselineQuote;
  },
) {
  const quoteGate = opts.quoteGate ?? new WaitGate(deps.config.quoteMaxWaiting);
  const app = new Elysia()
    .use(errorHandler)
    .use(
      openapi({
        path: "/docs",
        documentation: {
          info: {
            title: "resonate-bun-edge",
            version: "0.1.0",
            description:
              "Durable workflows behind HTTP: every route starts, awaits or reads a Resonate workflow.",
          },
        },
      }),
    )
    .use(healthRoutes(deps))
    .use(jobRoutes(deps))
    .use(orderRoutes(deps))
    .use(webhookRoutes(deps, opts.webhookSecret))
    .use(quoteRoutes(deps, quoteGate))
    .use(userRoutes(deps));
  return opts.bench ? app.use(benchRoutes(quoteGate, opts.bench)) : app;
}

export type App = ReturnType<typeof createApp>;
