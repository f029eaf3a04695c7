import { Elysia, StatusMap } from "elysia";
import type { Logger } from "../../core/observability/logger.ts";
import type { ApiMetrics } from "../../core/observability/metrics.ts";
import { nameRequestSpan, type Tracing, tracedFetch } from "../../core/observability/tracing.ts";
import { currentRequest, enterRequest, requestIdFrom } from "./request-context.ts";

/** The route label of a request no route matched: raw paths would make a label per path. */
const UNMATCHED = "unmatched";

/** `/jobs/order:1?x=1` from `http://host/jobs/order:1?x=1`, without parsing a URL. */
function pathOf(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start === -1) return "/";
  const query = url.indexOf("?", start);
  return url.slice(start, query === -1 ? undefined : query);
}

function statusOf(status: number | string | undefined): number {
  if (typeof status === "number") return status;
  if (status === undefined) return 200;
  return (StatusMap as Record<string, number>)[status] ?? (Number(status) || 200);
}

/**
 * One JSON line and the HTTP metrics for every request: `x-request-id` is
 * taken from the request when it is a sane token, else generated, and sent
 * back on the response; the line names the route pattern, the status, the
 * time taken and the workflow or promise the request touched. Mounted
 * first, so every request has its context before any other hook runs.
 */
export const observeRequests = (metrics: ApiMetrics, log: Logger) =>
  new Elysia()
    .onRequest(({ request, set }) => {
      const requestId = requestIdFrom(request.headers.get("x-request-id"));
      set.headers["x-request-id"] = requestId;
      enterRequest({ requestId, startedAt: performance.now(), log });
    })
    .onAfterResponse({ as: "global" }, ({ request, set, route, responseValue }) => {
      const context = currentRequest();
      if (!context) return;
      const ms = performance.now() - context.startedAt;
      const status = responseValue instanceof Response ? responseValue.status : statusOf(set.status);
      const labels = { method: request.method, route: route || UNMATCHED, status: String(status) };
      metrics.httpRequests.inc(labels);
      metrics.httpSeconds.observe(labels, ms / 1000);
      log.info(
        {
          request_id: context.requestId,
          method: request.method,
          route: labels.route,
          path: pathOf(request.url),
          status,
          duration_ms: Math.round(ms * 1000) / 1000,
          workflow_id: context.workflowId,
          promise_id: context.promiseId,
        },
        "request",
      );
    });

/**
 * With tracing on, each request runs inside a server span that continues
 * its `traceparent` (`tracedFetch`), named after its route once matched
 * (`POST /jobs`); everything the request starts is a child of it. Off, it
 * adds nothing.
 */
export const traceRequests = (tracing: Tracing) =>
  tracing.enabled
    ? new Elysia({ name: "trace-requests" })
        .wrap(
          (handle, request) =>
            ((...args: unknown[]) =>
              tracedFetch(tracing, () =>
                (handle as unknown as (...a: unknown[]) => Promise<Response>)(...args),
              )(request)) as unknown as ReturnType<typeof handle>,
        )
        .onBeforeHandle({ as: "global" }, ({ request, route }) => nameRequestSpan(request.method, route))
    : new Elysia({ name: "trace-requests" });
