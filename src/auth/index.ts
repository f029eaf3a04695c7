import { type AnyElysia, Elysia } from "elysia";
import type { Caller, CallerAuth } from "./service.ts";

/** Callers verified before their request's body was read, by request. */
const verified = new WeakMap<Request, Caller>();

/**
 * Checks the caller's token of every route that declares `security` before
 * its body is read (a global parse hook, to be used before the one that
 * reads bodies, src/http-rules.ts): a request to a checked route without a
 * valid token is a 401 whatever its body, and its body is never read.
 * `app` is the whole API; its routes are read once, at the first request.
 */
export const callersFirst = (auth: CallerAuth, app: () => AnyElysia) => {
  let secured: Set<string> | undefined;
  return new Elysia({ name: "callers-first" }).onParse({ as: "global" }, async ({ request, route }) => {
    secured ??= new Set(
      app()
        .routes.filter((r) => (r.hooks?.detail as { security?: unknown } | undefined)?.security)
        .map((r) => `${r.method} ${r.path}`),
    );
    if (!secured.has(`${request.method} ${route}`)) return;
    verified.set(request, await auth.authenticate(request.headers.get("authorization")));
  });
};

/**
 * Puts the verified `caller` in the context of every route of the plugin
 * that uses this (verified by `callersFirst` for a request with a body,
 * here otherwise), before its body or parameters are validated against the
 * route's schema: a request without a valid token is a 401, and one
 * `authorize` refuses (given the route's path parameters) a 403. Unnamed on
 * purpose: each feature that uses it gets its own hook.
 */
export const authenticated = (
  auth: CallerAuth,
  authorize?: (caller: Caller, params: Record<string, string>) => void,
) =>
  new Elysia().derive({ as: "scoped" }, async ({ request, params }) => {
    const caller = verified.get(request) ?? (await auth.authenticate(request.headers.get("authorization")));
    authorize?.(caller, params as Record<string, string>);
    return { caller };
  });
