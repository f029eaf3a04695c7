/**
 * An OTLP/HTTP receiver that only counts: where the processes of a load run
 * send their spans (`--trace-ratio`), so the run measures what exporting
 * costs them and not what a trace backend does with the spans.
 */
export interface OtlpSink {
  /** The base URL for `OTEL_EXPORTER_OTLP_ENDPOINT`. */
  readonly url: string;
  /** Export requests and their bytes so far. */
  counts(): { exports: number; bytes: number };
  stop(): void;
}

export function startOtlpSink(): OtlpSink {
  let exports = 0;
  let bytes = 0;
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(request) {
      if (request.method !== "POST" || new URL(request.url).pathname !== "/v1/traces")
        return new Response("not found", { status: 404 });
      bytes += (await request.arrayBuffer()).byteLength;
      exports++;
      // An empty ExportTraceServiceResponse, in the encoding the exporter sent.
      return (request.headers.get("content-type") ?? "").includes("json")
        ? Response.json({})
        : new Response(new Uint8Array(0), { headers: { "content-type": "application/x-protobuf" } });
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}`,
    counts: () => ({ exports, bytes }),
    stop: () => server.stop(true),
  };
}
