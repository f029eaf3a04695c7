import { Elysia } from "elysia";
import type { Caller, CallerAuth } from "./service.ts";

/**
 * Puts the verified `caller` in the context of every route of the plugin
 * that uses this, before its body or parameters are validated against the
 * route's schema: a request without a valid token is a 401, and one
 * `authorize` refuses (given the route's path parameters) a 403. The body
 * has been read by then (within BODY_LIMIT_BYTES, src/http-rules.ts), so one
 * that is not JSON, or not a JSON object, is refused as such first.
 * Unnamed on purpose: each feature that uses it gets its own hook.
 */
export const authenticated = (
  auth: CallerAuth,
  authorize?: (caller: Caller, params: Record<string, string>) => void,
) =>
  new Elysia().derive({ as: "scoped" }, async ({ request, params }) => {
    const caller = await auth.authenticate(request.headers.get("authorization"));
    authorize?.(caller, params as Record<string, string>);
    return { caller };
  });
