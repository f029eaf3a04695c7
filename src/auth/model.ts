/** The OpenAPI security scheme of the API's callers, and the `security` a checked route declares in its `detail`. */
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
