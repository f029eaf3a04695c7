/**
 * Who may call a route is declared with the route, through the `caller`
 * macro of `callers(auth)`:
 *
 *   .post("/", handler, { caller: true, ... })                  any valid token
 *   .get("/:id/orders", handler, { caller: { actsFor: "id" } }) only the user `id` names
 *
 * The declaration gives the route its OpenAPI `security` (and, for
 * `actsFor`, the `x-acts-for` extension) and puts the verified `caller` in
 * its handler's context. The check itself runs in `callersFirst`, earlier
 * than any hook of the route could: Elysia runs a route's own parse hooks
 * after the global one that reads bodies (src/http-rules.ts), so a route
 * hook would see the body read before its caller. `callersFirst` checks,
 * for the route that matched, what its declaration marked on it.
 */
import { type AnyElysia, Elysia } from "elysia";
import { ACTS_FOR, Secured } from "./model.ts";
import { assertActsFor, type Caller, type CallerAuth } from "./service.ts";

/** Who may call a route: any caller with a valid token, or (`actsFor`) only the user a path parameter names. */
export type CallerRule = true | { actsFor: string };

/** Callers verified, by request: by `callersFirst`, before anything else of the request is read. */
const verified = new WeakMap<Request, Caller>();

/**
 * The `caller` macro: `{ caller: CallerRule }` on a route declares who may
 * call it, gives it its OpenAPI `security`, and its handler the verified
 * `caller`. The rule is checked again here, after `callersFirst` (a
 * comparison), and in full for a request that reached none of its hooks.
 */
export const callers = (auth: CallerAuth) =>
  new Elysia({ name: "callers" }).macro({
    caller: (rule: CallerRule) => ({
      detail: { security: Secured, ...(rule === true ? {} : { [ACTS_FOR]: rule.actsFor }) },
      resolve: async ({ request, params }) => {
        const caller =
          verified.get(request) ?? (await auth.authenticate(request.headers.get("authorization")));
        if (rule !== true) assertActsFor(caller, (params as Record<string, string>)[rule.actsFor] ?? "");
        return { caller };
      },
    }),
  });

/**
 * Checks the caller of every route declared with `caller`, before its body
 * is read (a global parse hook, to be used before the one that reads
 * bodies, src/http-rules.ts) or, for a request without a body, before its
 * parameters are validated (a global transform hook): a request without a
 * valid token is a 401 whatever it carries, and one to a route of another
 * user (`actsFor`) is a 403; neither's body is read. `app` is the whole
 * API; the rules its routes declared are read once, at the first request.
 */
export const callersFirst = (auth: CallerAuth, app: () => AnyElysia) => {
  let rules: Map<string, CallerRule> | undefined;
  const ruleOf = (method: string, route: string) => {
    rules ??= new Map(
      app()
        .routes.map((r) => [r, r.hooks?.detail as Record<string, unknown> | undefined] as const)
        // What the `caller` macro marked on the route.
        .filter(([, detail]) => detail?.security === Secured)
        .map(([r, detail]) => {
          const actsFor = detail?.[ACTS_FOR];
          return [`${r.method} ${r.path}`, typeof actsFor === "string" ? { actsFor } : true] as const;
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
      if (rule !== true) assertActsFor(caller, params?.[rule.actsFor] ?? "");
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
