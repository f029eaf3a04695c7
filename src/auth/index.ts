import { type AnyElysia, Elysia } from "elysia";
import { ACTS_FOR } from "./model.ts";
import { assertActsFor, type Caller, type CallerAuth } from "./service.ts";

/** Callers verified, by request: by `callersFirst`, before anything else of the request is read. */
const verified = new WeakMap<Request, Caller>();

/** What a checked route asks of its caller: a valid token, and (`actsFor`) to be the user a path parameter names. */
interface CallerRule {
  actsFor?: string;
}

/**
 * Checks the caller of every route that declares `security`, before its
 * body is read (a global parse hook, to be used before the one that reads
 * bodies, src/http-rules.ts) or, for a request without a body, before its
 * parameters are validated (a global transform hook): a request without a
 * valid token is a 401 whatever it carries, and one to a route that
 * declares `ACTS_FOR` from another `sub` is a 403; neither's body is read.
 * `app` is the whole API; its routes are read once, at the first request.
 */
export const callersFirst = (auth: CallerAuth, app: () => AnyElysia) => {
  let rules: Map<string, CallerRule> | undefined;
  const ruleOf = (method: string, route: string) => {
    rules ??= new Map(
      app()
        .routes.map((r) => [r, r.hooks?.detail as Record<string, unknown> | undefined] as const)
        .filter(([, detail]) => detail?.security)
        .map(([r, detail]) => {
          const actsFor = detail?.[ACTS_FOR];
          return [`${r.method} ${r.path}`, typeof actsFor === "string" ? { actsFor } : {}] as const;
        }),
    );
    // A HEAD is answered by the GET route of its path.
    return rules.get(`${method === "HEAD" ? "GET" : method} ${route}`);
  };
  // Synchronous for a route that checks nothing: no promise on the unchecked routes' path.
  const check = (
    request: Request,
    route: string,
    params: Record<string, string> | undefined,
  ): Promise<void> | undefined => {
    if (verified.has(request)) return;
    const rule = ruleOf(request.method, route);
    if (!rule) return;
    return auth.authenticate(request.headers.get("authorization")).then((caller) => {
      if (rule.actsFor) assertActsFor(caller, params?.[rule.actsFor] ?? "");
      verified.set(request, caller);
    });
  };
  return new Elysia({ name: "callers-first" })
    .onParse({ as: "global" }, async ({ request, route, params }) => {
      await check(request, route, params as Record<string, string> | undefined);
    })
    .onTransform({ as: "global" }, ({ request, route, params }) =>
      check(request, route, params as Record<string, string> | undefined),
    );
};

/**
 * Puts the `caller` that `callersFirst` verified in the context of every
 * route of the plugin that uses this (verifying it here for a request that
 * reached no hook of `callersFirst`). Unnamed on purpose: each feature that
 * uses it gets its own hook.
 */
export const authenticated = (auth: CallerAuth) =>
  new Elysia().derive({ as: "scoped" }, async ({ request }) => ({
    caller: verified.get(request) ?? (await auth.authenticate(request.headers.get("authorization"))),
  }));
