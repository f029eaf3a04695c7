import { Elysia } from "elysia";
import type { Deps } from "../deps.ts";
import { scrape } from "./service.ts";

/**
 * `GET /metrics`: this app's metrics in the Prometheus text format, left out
 * of the OpenAPI document. Open unless METRICS_TOKEN is set.
 */
export const metricsRoutes = (deps: Deps) =>
  new Elysia({ name: "metrics" }).get(
    "/metrics",
    async ({ request }) => {
      const { body, contentType } = await scrape(deps, request.headers.get("authorization"));
      return new Response(body, { headers: { "content-type": contentType } });
    },
    { detail: { hide: true } },
  );
