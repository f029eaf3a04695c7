/** An OTLP/HTTP receiver a test starts, and the spans it was sent, for the trace tests. */

/** The settings of a process that exports to `url` over `protocol`, each batch 50 ms after its first span. */
export const exportingTo = (url: string, protocol: "http/json" | "http/protobuf") => ({
  OTEL_EXPORTER_OTLP_ENDPOINT: url,
  OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
  OTEL_BSP_SCHEDULE_DELAY: "50",
});

/** An OTLP/HTTP receiver on `/v1/traces`: what arrived, as JSON (`http/json`) or as the bytes' content type. */
export function startReceiver() {
  const requests: { type: string; body: unknown }[] = [];
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(request) {
      if (new URL(request.url).pathname !== "/v1/traces" || request.method !== "POST")
        return new Response("not found", { status: 404 });
      const type = request.headers.get("content-type") ?? "";
      requests.push({
        type,
        body: type.includes("json") ? await request.json() : await request.arrayBuffer(),
      });
      return Response.json({});
    },
  });
  return { url: `http://127.0.0.1:${server.port}`, requests, stop: () => server.stop(true) };
}

export interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  links?: { traceId: string; spanId: string }[];
  name: string;
  kind: number;
  attributes: {
    key: string;
    value: { stringValue?: string; intValue?: string | number; boolValue?: boolean };
  }[];
  /** `code` 2 is an error. */
  status?: { code?: number };
}

/** A span's attribute `key`, as text (`"true"` for a true flag). */
export const attribute = (span: OtlpSpan, key: string): string | undefined => {
  const value = span.attributes.find((a) => a.key === key)?.value;
  if (value === undefined) return undefined;
  return value.stringValue ?? String(value.intValue ?? value.boolValue);
};

/** Every span received as JSON, with the `service.name` of its resource. */
export function spansOf(requests: { type: string; body: unknown }[]): (OtlpSpan & { service: string })[] {
  type Body = {
    resourceSpans: {
      resource: { attributes: { key: string; value: { stringValue?: string } }[] };
      scopeSpans: { spans: OtlpSpan[] }[];
    }[];
  };
  return requests
    .filter((r) => r.type.includes("json"))
    .flatMap((r) =>
      (r.body as Body).resourceSpans.flatMap((rs) => {
        const service = rs.resource.attributes.find((a) => a.key === "service.name")?.value.stringValue ?? "";
        return rs.scopeSpans.flatMap((ss) => ss.spans.map((span) => ({ ...span, service })));
      }),
    );
}
