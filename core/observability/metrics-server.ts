import type { Registry } from "prom-client";
import { mayScrape } from "./metrics.ts";

export interface MetricsServer {
  /** `http://<host>:<port>/metrics` */
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

/**
 * Serves `registry` at `GET /metrics` on a port of its own (0: one the OS
 * picks), for processes that serve nothing else over HTTP: the workers and
 * the harness Resonate server. Bun only.
 */
export function serveMetrics(
  registry: Registry,
  opts: { hostname: string; port: number; token?: string | undefined },
): MetricsServer {
  const server = Bun.serve({
    hostname: opts.hostname,
    port: opts.port,
    fetch: async (req) => {
      if (new URL(req.url).pathname !== "/metrics") return new Response("not found\n", { status: 404 });
      if (!mayScrape(opts.token, req.headers.get("authorization")))
        return new Response("unauthorized\n", { status: 401, headers: { "www-authenticate": "Bearer" } });
      return new Response(await registry.metrics(), { headers: { "content-type": registry.contentType } });
    },
  });
  const port = server.port as number;
  return {
    url: `http://${opts.hostname}:${port}/metrics`,
    port,
    stop: () => server.stop(true),
  };
}
