import { mayScrape } from "../../core/observability/metrics.ts";
import type { Deps } from "../deps.ts";
import { HttpError } from "../errors.ts";

/** This app's metrics in the Prometheus text format; a 401 when METRICS_TOKEN is set and not given. */
export async function scrape(
  deps: Deps,
  authorization: string | null,
): Promise<{ body: string; contentType: string }> {
  if (!mayScrape(deps.config.metricsToken, authorization)) {
    throw new HttpError(
      401,
      "unauthorized",
      "metrics need Authorization: Bearer <METRICS_TOKEN>",
      undefined,
      { "www-authenticate": "Bearer" },
    );
  }
  const { registry } = deps.metrics;
  return { body: await registry.metrics(), contentType: registry.contentType };
}
