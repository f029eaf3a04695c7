/**
 * OpenTelemetry traces of one process: a tracer provider that batches
 * spans to the OTLP/HTTP endpoint of the standard `OTEL_*` variables
 * (`TracingSettings`), W3C trace context (`traceparent`, `tracestate`) as
 * the propagator, and the active span kept across `await` by
 * AsyncLocalStorage, on Bun and on Deno alike. With no endpoint nothing is
 * registered: the API's calls find no provider and cost about 0.1 µs a span.
 */
import {
  type Context,
  context,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  trace,
} from "@opentelemetry/api";
import type { TracingSettings } from "../config.ts";

/** The name spans of this project are made under (their instrumentation scope). */
export const TRACER_NAME = "resonate-bun-edge";

/** A process's tracing: on, with a provider to flush at exit, or off. */
export interface Tracing {
  readonly enabled: boolean;
  /** Sends what is still batched, and stops; resolves at once when off. */
  shutdown(): Promise<void>;
}

/** Tracing off: nothing registered. */
export const TRACING_OFF: Tracing = { enabled: false, shutdown: async () => {} };

/**
 * Starts tracing for a process whose service is `service` (`api`, a worker
 * group), unless `OTEL_SERVICE_NAME` names it; `exporter` replaces the OTLP
 * one. The SDK is loaded only here, when tracing is on: it takes 60 to 100
 * ms to load, which every process would pay at start otherwise.
 */
export async function startTracing(
  settings: TracingSettings | undefined,
  service: string,
  exporter?: import("@opentelemetry/sdk-trace").SpanExporter,
): Promise<Tracing> {
  if (!settings) return TRACING_OFF;
  const { registerTracing } = await import("./tracing-sdk.ts");
  return registerTracing(settings, service, exporter);
}

const headerGetter: TextMapGetter<Headers> = {
  keys: (headers) => [...headers.keys()],
  get: (headers, key) => headers.get(key) ?? undefined,
};

/**
 * Runs `fetch` for `request` inside a server span that continues the
 * request's `traceparent` (or starts a trace), named by its method until
 * the route names it (`nameRequestSpan`); a 5xx or a throw marks it an
 * error. With tracing off it is `fetch` itself.
 */
export function tracedFetch(
  tracing: Tracing,
  fetch: (request: Request) => Promise<Response>,
): (request: Request) => Promise<Response> {
  if (!tracing.enabled) return fetch;
  const tracer = trace.getTracer(TRACER_NAME);
  return (request) => {
    const parent = propagation.extract(ROOT_CONTEXT, request.headers, headerGetter);
    const url = new URL(request.url);
    const span = tracer.startSpan(
      request.method,
      {
        kind: SpanKind.SERVER,
        attributes: {
          "http.request.method": request.method,
          "url.path": url.pathname,
          "url.scheme": url.protocol.slice(0, -1),
        },
      },
      parent,
    );
    return context.with(trace.setSpan(parent, span), async () => {
      try {
        const response = await fetch(request);
        span.setAttribute("http.response.status_code", response.status);
        if (response.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
        return response;
      } catch (error) {
        span.recordException(error as Error);
        span.setStatus({ code: SpanStatusCode.ERROR });
        throw error;
      } finally {
        span.end();
      }
    });
  };
}

/** Names the active request span after its route (`POST /jobs`), as the route is known only once matched. */
export function nameRequestSpan(method: string, route: string): void {
  const span = trace.getActiveSpan();
  if (!span) return;
  span.updateName(`${method} ${route}`);
  span.setAttribute("http.route", route);
}

/** The active span's context as `traceparent` (and `tracestate`) tags; none when no span is active. */
export function traceTags(active: Context = context.active()): Record<string, string> {
  const carrier: Record<string, string> = {};
  propagation.inject(active, carrier);
  return carrier;
}

/** The span context a promise's trace tags name, if they name a valid one. */
export function spanContextOf(tags: Readonly<Record<string, string>> | undefined) {
  if (!tags?.traceparent) return undefined;
  const named = trace.getSpanContext(propagation.extract(ROOT_CONTEXT, tags));
  return named && trace.isSpanContextValid(named) ? named : undefined;
}

/**
 * Links the active span (a request's) to the trace a job's root promise
 * tags name: a read, a wait, an event stream or a cancel of the job, each
 * in a trace of its own, found from the job's. Nothing outside a span.
 */
export function linkToTrace(tags: Readonly<Record<string, string>> | undefined): void {
  const span = trace.getActiveSpan();
  const job = span && spanContextOf(tags);
  if (span && job) span.addLink({ context: job, attributes: { "resonate.link": "job" } });
}

/**
 * Runs `fn` in a span named `name` inside the trace `tags` name (a job's),
 * linked to the active span (the request that brought it, in its sender's
 * trace): a webhook that settles a promise of the job shows in the job's
 * trace. Without a traced job, or outside a span, it is `fn()`.
 */
export async function inTraceOf<T>(
  tags: Readonly<Record<string, string>> | undefined,
  name: string,
  attributes: Record<string, string>,
  fn: () => Promise<T>,
): Promise<T> {
  const request = trace.getActiveSpan();
  if (!request || !spanContextOf(tags)) return fn();
  const parent = propagation.extract(ROOT_CONTEXT, tags ?? {});
  const span = trace
    .getTracer(TRACER_NAME)
    .startSpan(name, { attributes, links: [{ context: request.spanContext() }] }, parent);
  try {
    return await context.with(trace.setSpan(parent, span), fn);
  } catch (error) {
    span.recordException(error instanceof Error ? error : new Error(String(error)));
    span.setStatus({ code: SpanStatusCode.ERROR });
    throw error;
  } finally {
    span.end();
  }
}

/** Whether the current code runs inside a span: tracing is on and a request or a run is traced. */
export const traced = (): boolean => trace.getActiveSpan() !== undefined;

/** The ids a log line carries inside a span: `trace_id`, `span_id`; none outside one. */
export function logIds(span: Span | undefined = trace.getActiveSpan()): Record<string, string> {
  const ids = span?.spanContext();
  return ids && trace.isSpanContextValid(ids) ? { trace_id: ids.traceId, span_id: ids.spanId } : {};
}
