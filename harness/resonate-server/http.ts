import { jsonReply } from "../http-reply.ts";
import type { ServerMetrics } from "./metrics.ts";
import type { ProtocolReply, ProtocolServer } from "./server.ts";
import { KINDS } from "./validate.ts";

/** Reads a request body; undefined when it is larger than `limit` bytes. */
async function readBody(req: Request, limit: number): Promise<string | undefined> {
  const length = req.headers.get("content-length");
  if (length !== null && Number(length) > limit) return undefined;
  const text = await req.text();
  // A body with a content-length is exactly that long; a chunked one is measured.
  return length === null && Buffer.byteLength(text) > limit ? undefined : text;
}

/** The token of `Authorization: Bearer <token>` (that exact scheme spelling, as the real server reads it). */
function bearer(req: Request): string | undefined {
  const value = req.headers.get("authorization");
  return value?.startsWith("Bearer ") ? value.slice("Bearer ".length) : undefined;
}

const LEGACY_ROUTES = /^\/(promises|schedules|tasks)(\/|$)/;

/** Counts an answered protocol request by kind (one of the protocol's, else `unknown`) and status. */
function count(metrics: ServerMetrics, reply: ProtocolReply, startedAt: number): void {
  const kind = (reply.body as { kind?: unknown }).kind;
  const label = typeof kind === "string" && KINDS.has(kind) ? kind : "unknown";
  metrics.requests.inc({ kind: label, status: String(reply.status) });
  metrics.requestSeconds.observe({ kind: label }, (performance.now() - startedAt) / 1000);
}

/**
 * The HTTP face of a protocol server:
 * - `POST /`: the protocol (`{kind, head, data}` in, the same envelope out, HTTP status = `head.status`);
 * - `GET /poll/:group/:pid`: the Server-Sent Events stream of a process (with `Authorization:
 *   Bearer <token>` when tokens are checked);
 * - `GET /healthz` (also `/health`): open streams and the promises and tasks held in memory;
 * - `GET /ready`.
 */
export function serveProtocol(
  server: ProtocolServer,
  opts: { hostname: string; port: number; maxBodyBytes: number },
) {
  return Bun.serve({
    hostname: opts.hostname,
    port: opts.port,
    // SSE streams are idle between messages; Bun's default 10 s idle timeout would cut them.
    idleTimeout: 0,
    maxRequestBodySize: opts.maxBodyBytes * 2,
    routes: {
      "/": {
        POST: async (req) => {
          const startedAt = performance.now();
          const raw = await readBody(req, opts.maxBodyBytes);
          const reply: ProtocolReply =
            raw === undefined
              ? {
                  status: 413,
                  body: {
                    kind: "unknown",
                    head: { corrId: "0", status: 413, version: "" },
                    data: `Request body exceeds the limit of ${opts.maxBodyBytes} bytes`,
                  },
                }
              : await server.handle(raw);
          if (server.metrics) count(server.metrics, reply, startedAt);
          return jsonReply(reply.status, reply.body);
        },
      },
    },
    fetch: async (req) => {
      const path = new URL(req.url).pathname;
      if (path === "/")
        return jsonReply(405, { error: "use POST / for protocol requests" }, { allow: "POST" });
      if (path === "/healthz" || path === "/health") {
        // With tokens checked, what the server holds is told only to a valid token (the real one tells nothing).
        if (server.auth && (await server.auth.authenticate(bearer(req))))
          return jsonReply(200, { status: "ok" });
        return jsonReply(200, { status: "ok", connections: server.hub.size, resident: server.resident });
      }
      if (path === "/ready" || path === "/readyz") return jsonReply(200, { status: "ready" });
      const poll = /^\/poll\/([^/]+)\/([^/]+)$/.exec(path);
      if (poll && req.method === "GET") {
        const [, group = "", pid = ""] = poll;
        // Authenticated only, as on the real server: a valid token opens the stream of any group and pid.
        if (server.auth && (await server.auth.authenticate(bearer(req))))
          return new Response("Unauthorized", {
            status: 401,
            headers: { "content-type": "text/plain; charset=utf-8" },
          });
        return server.hub.open(decodeURIComponent(group), decodeURIComponent(pid), req.signal);
      }
      if (LEGACY_ROUTES.test(path)) {
        return jsonReply(410, {
          error: "This endpoint is no longer supported. Please update to the latest SDK.",
        });
      }
      return jsonReply(404, { error: `no route for ${req.method} ${path}` });
    },
  });
}
