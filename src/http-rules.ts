import { type AnyElysia, Elysia } from "elysia";
import { HttpError, preview } from "./errors.ts";
import { readAtMost } from "./read-body.ts";

/** Methods Elysia routes itself; a request with any other (TRACE, CONNECT, …) never reaches a route or `onError`. */
const ROUTED_METHODS = new Set(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]);

const isJson = (contentType: string) => /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i.test(contentType);

export interface HttpLimits {
  /** Largest body a route reads, in bytes. */
  bodyLimitBytes: number;
  /** Time a body has to arrive whole (ms). */
  bodyTimeoutMs: number;
  /** Requests served at once. */
  maxRequestsInFlight: number;
}

const tooLarge = (limit: number) =>
  new HttpError(413, "body_too_large", `the request body must be at most ${limit} bytes`);

/**
 * Reads a body as text, at most `limit` bytes and within `timeoutMs`: a
 * larger one is refused from its `Content-Length`, or at its first chunk
 * past the limit when it is chunked, and a slow one when the time is up, so
 * neither is ever held whole in memory or kept waiting.
 */
async function readLimited(request: Request, limit: number, timeoutMs: number): Promise<string> {
  const text = await readAtMost(request, limit, {
    ms: timeoutMs,
    error: () =>
      new HttpError(
        408,
        "request_timeout",
        `the request body did not arrive within ${timeoutMs} ms`,
        undefined,
        {
          connection: "close",
        },
      ),
  });
  if (text === undefined) throw tooLarge(limit);
  return text;
}

/**
 * Rules every route keeps, whatever it does:
 * - a route that takes a body takes JSON: any other content type is a 415;
 *   no body and no type at all is read as `{}` (then validated as any body);
 * - a body is read only up to `bodyLimitBytes` (413 past it, from
 *   `Content-Length` before anything is read, or while a chunked body
 *   arrives) and within `bodyTimeoutMs` (408, and the connection closes);
 * - past `maxRequestsInFlight` requests at once, a new one is a 503 at once;
 * - a path the API serves, asked with a method it does not serve, is a 405
 *   with `Allow` (RFC 9110), not a 404.
 * `app` is the whole API: the routes are read from it once, at the first
 * request that needs them. The requests in flight are counted from their
 * arrival to their answer (or the client's leaving).
 */
export const httpRules = (
  app: () => AnyElysia,
  limits: HttpLimits,
  /** Told the number of requests in flight whenever it changes. */
  onInFlight?: (count: number) => void,
) => {
  let routes: { pattern: RegExp; method: string; body: boolean; text: boolean; path: string }[] | undefined;
  const table = () => {
    routes ??= app().routes.map((route) => {
      const parse = route.hooks?.parse as { fn?: unknown }[] | undefined;
      return {
        pattern: new RegExp(`^${route.path.replace(/:[^/]+/g, "[^/]+").replace(/\*/g, ".*")}/?$`),
        method: route.method.toUpperCase(),
        body: route.hooks?.body !== undefined,
        // Routes that read their body as text (the webhooks: their signature covers the exact bytes).
        text: parse?.some((p) => p.fn === "text") ?? false,
        path: route.path,
      };
    });
    return routes;
  };
  let inFlight = 0;
  const counted = new WeakSet<Request>();
  /** The methods served at `path` in alphabetical order, or none when no route has it. */
  const allowed = (path: string) =>
    [
      ...new Set(
        table()
          .filter((r) => r.pattern.test(path))
          .map((r) => r.method),
      ),
    ].sort();
  const methodNotAllowed = (method: string, path: string): HttpError | undefined => {
    const methods = allowed(path);
    if (methods.length === 0 || methods.includes(method)) return undefined;
    return new HttpError(
      405,
      "method_not_allowed",
      `${method} is not served at ${path.slice(0, 200)}`,
      undefined,
      {
        allow: methods.join(", "),
      },
    );
  };
  return new Elysia({ name: "http-rules" })
    .onRequest(({ request }) => {
      if (inFlight >= limits.maxRequestsInFlight) {
        throw new HttpError(503, "overloaded", "too many requests at once; retry shortly", undefined, {
          "retry-after": "1",
        });
      }
      inFlight++;
      onInFlight?.(inFlight);
      counted.add(request);
      // A client that goes away before its answer may get no afterResponse: its slot is freed here.
      request.signal?.addEventListener("abort", () => {
        if (counted.delete(request)) onInFlight?.(--inFlight);
      });
      if (ROUTED_METHODS.has(request.method)) return;
      // Thrown, not returned, so the error handler answers it and the request is logged and counted.
      const refused = methodNotAllowed(request.method, new URL(request.url).pathname);
      if (refused) throw refused;
    })
    .onParse({ as: "global" }, async ({ request, route, contentType, server }) => {
      const entry = table().find((r) => r.path === route && r.method === request.method && r.body);
      if (!entry) return;
      // No body at all (and no type): read as an empty object, so a body whose fields are all optional may be left out.
      if (!contentType && (request.body === null || request.headers.get("content-length") === "0"))
        return entry.text ? "" : {};
      if (!isJson(contentType)) {
        throw new HttpError(
          415,
          "unsupported_media_type",
          `the body must be application/json${contentType ? `, got ${contentType.slice(0, 100)}` : ""}`,
        );
      }
      const text = await readLimited(request, limits.bodyLimitBytes, limits.bodyTimeoutMs).catch(
        (error: unknown) => {
          // Bun stops reading a body it answered early but closes the connection only once it is idle:
          // a client still trickling would keep it. A short idle timeout closes it right after the 408.
          if (error instanceof HttpError && error.status === 408 && typeof server?.timeout === "function")
            server.timeout(request, 1);
          throw error;
        },
      );
      if (entry.text) return text;
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        throw new HttpError(400, "malformed_body", "the request body could not be parsed as JSON");
      }
      // Every JSON body is an object; Elysia would read another value as `{}` for a schema whose fields are all optional.
      if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed))
        throw new HttpError(
          422,
          "validation_failed",
          `invalid body: must be an object, got ${preview(parsed)}`,
          [{ field: "body", message: `must be an object, got ${preview(parsed)}` }],
        );
      return parsed;
    })
    .onAfterResponse({ as: "global" }, ({ request }) => {
      if (counted.delete(request)) onInFlight?.(--inFlight);
    })
    .onError({ as: "global" }, ({ code, request, set }) => {
      if (code !== "NOT_FOUND") return;
      const refused = methodNotAllowed(request.method, new URL(request.url).pathname);
      if (!refused) return;
      set.status = 405;
      set.headers["content-type"] = "application/json";
      Object.assign(set.headers, refused.headers);
      return { error: { code: refused.code, message: refused.message } };
    });
};
