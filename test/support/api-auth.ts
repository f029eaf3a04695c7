import { API_AUTH_DEFAULTS, type ApiTokenClaims, apiAuthIn } from "../../harness/api-auth.ts";
import { tempDir } from "../../harness/scope.ts";

/** One key pair for every API this test process starts; its folder is removed when the process exits. */
const keyDir = tempDir("api-auth-test-");
process.on("exit", () => keyDir.remove());
export const TEST_API_AUTH = apiAuthIn(keyDir.path);

/** The subject of the tests' default token: an operator, who may see every job. */
export const TEST_CALLER = "tester";

/**
 * The `Authorization` header a test sends by default to `path`: on
 * `/users/<id>/…` the token of that user (a user's routes take only their
 * own), elsewhere `TEST_CALLER`'s with the operator scope. Tests of who may
 * call what pass their own header instead (see `bearer`).
 */
export async function defaultAuthorization(path: string): Promise<string> {
  const user = /^\/users\/([^/?]+)/.exec(path)?.[1];
  if (user !== undefined) return bearer(decodeURIComponent(user));
  return bearer(TEST_CALLER, { scope: API_AUTH_DEFAULTS.operatorScope });
}

/** `Bearer <token>` for `sub`, signed with the tests' key. */
export async function bearer(sub: string, claims?: ApiTokenClaims): Promise<string> {
  return `Bearer ${await TEST_API_AUTH.token(sub, claims)}`;
}
