import { type AnyElysia, Elysia } from "elysia";
import { HttpError } from "./errors.ts";

/** Methods Elysia routes itself; a request with any other (TRACE, CONNECT, …) never reaches a route or `onError`. */
const ROUTED_METHODS = new Set(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]);

const isJson = (contentType: string) => /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i.test(contentType);

/**
 * Rules every route keeps, whatever it does:
 * - a route that takes a body takes JSON: any other content type is a 415;
 * - a path the API serves, asked with a method it does not serve, is a 405
 *   with `Allow` (RFC 9110), not a 404.
 * `app` is the whole API: the routes are read from it once, at the first
 * request that needs them.
 */
export const httpRules = (app: () => AnyElysia) => {
  let routes: { pattern: RegExp; method: string; body: boolean; path: string }[] | undefined;
  const table = () => {
    routes ??= app().routes.map((route) => ({
      pattern: new RegExp(`^${route.path.replace(/:[^/]+/g, "[^/]+").replace(/\*/g, ".*")}/?$`),
      method: route.method.toUpperCase(),
      body: route.hooks?.body !== undefined,
      path: route.path,
    }));
    return routes;
  };
  /** The methods served at `path`, or none when no route has it. */
  const allowed = (path: string) => [
    ...new Set(
      table()
        .filter((r) => r.pattern.test(path))
        .map((r) => r.method),
    ),
  ];
  const methodNotAllowed = (method: string, path: string): HttpError | undefined => {
    const methods = allowed(path);
    if (methods.length === 0 || methods.includes(method)) return undefined;
    return new HttpError(405, "method_not_allowed", `${method} is not served at ${path}`, undefined, {
      allow: methods.join(", "),
    });
  };
  return new Elysia({ name: "http-rules" })
    .onRequest(({ request }) => {
      if (ROUTED_METHODS.has(request.method)) return;
      // Thrown, not returned, so the error handler answers it and the request is logged and counted.
      const refused = methodNotAllowed(request.method, new URL(request.url).pathname);
      if (refused) throw refused;
    })
    .onParse({ as: "global" }, ({ request, route, contentType }) => {
      const takesBody = table().some((r) => r.path === route && r.method === request.method && r.body);
      if (takesBody && !isJson(contentType)) {
        throw new HttpError(
          415,
          "unsupported_media_type",
          `the body must be application/json${contentType ? `, got ${contentType.slice(0, 100)}` : ""}`,
        );
      }
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
