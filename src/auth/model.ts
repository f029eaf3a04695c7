/** The OpenAPI security scheme of the API's callers, and the `security` the `caller` macro gives a checked route. */
export const SecuritySchemes = {
  bearer: {
    type: "http",
    scheme: "bearer",
    bearerFormat: "JWT",
    description:
      "A JWT signed with the key the API is given (AUTH_PUBLIC_KEY or AUTH_JWKS), with the configured iss and aud, an exp, and the caller's sub. The scope `operator` (AUTH_OPERATOR_SCOPE) lets a caller see every caller's jobs. `npm start` writes a development token to <DATA_DIR>/api-token.",
  },
} as const;

export const Secured: Record<string, string[]>[] = [{ bearer: [] }];

/**
 * The `detail` key that the `caller` macro gives a route of one caller
 * only (`actsFor`), naming the path parameter that caller's `sub` must
 * equal (`/users/:id/*`: `"id"`); the document shows it as an extension of
 * the operation.
 */
export const ACTS_FOR = "x-acts-for";
