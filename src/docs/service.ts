import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { toOpenAPISchema } from "@elysiajs/openapi";
import type { AnyElysia } from "elysia";
import { SecuritySchemes } from "../auth/model.ts";
import { unavailableResponse } from "../models.ts";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Operation = {
  requestBody?: Json;
  parameters?: { name: string; in: string; schema?: unknown }[];
  responses?: Record<string, Record<string, unknown>>;
} & Record<string, unknown>;

export interface DocumentInfo {
  title: string;
  version: string;
  description: string;
}

/** A copy of `value` without `$id`: Elysia names models by it, and JSON Schema 2020-12 forbids a fragment there. */
function withoutIds(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutIds);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([key]) => key !== "$id")
      .map(([key, v]) => [key, withoutIds(v)]),
  );
}

/**
 * The OpenAPI 3.1 document of `app`: what Elysia derives from each route's
 * schemas, then what a route's `detail` declares beyond them, which Elysia
 * would otherwise drop: a `requestBody` (the webhooks read theirs as text to
 * check its signature, but it is JSON), header `parameters` the route
 * checks itself, and per status a response's `description`, `headers` and
 * `links` (Elysia writes each status's response from its schema alone).
 */
export function openApiDocument(app: AnyElysia, info: DocumentInfo) {
  const { paths, components } = withoutIds(
    toOpenAPISchema(app, undefined, undefined, undefined, "3.1.0"),
  ) as {
    paths: Record<string, Record<string, Operation>>;
    components: { schemas: Record<string, unknown>; securitySchemes?: Record<string, unknown> };
  };
  for (const methods of Object.values(paths))
    for (const operation of Object.values(methods))
      for (const parameter of operation.parameters ?? []) withoutCoercion(parameter);
  for (const route of app.routes) {
    const detail = route.hooks?.detail as Operation | undefined;
    const operation = paths[route.path.replace(/:([^/]+)/g, "{$1}")]?.[route.method.toLowerCase()];
    if (!detail || !operation) continue;
    if (detail.requestBody) operation.requestBody = detail.requestBody;
    if (detail.parameters) {
      const declared = (operation.parameters ?? []).filter(
        (p) =>
          !detail.parameters?.some((d) => d.name.toLowerCase() === p.name.toLowerCase() && d.in === p.in),
      );
      operation.parameters = [...declared, ...detail.parameters];
    }
    for (const [status, declared] of Object.entries(detail.responses ?? {})) {
      const response = operation.responses?.[status];
      if (!response)
        throw new Error(
          `${route.method} ${route.path}: detail.responses names ${status}, which the route does not answer`,
        );
      Object.assign(response, declared);
    }
  }
  for (const methods of Object.values(paths))
    for (const operation of Object.values(methods)) withRuleAnswers(operation);
  components.securitySchemes = SecuritySchemes;
  return { openapi: "3.1.0", info, paths, components };
}

/**
 * A query or path number as the document states it: Elysia writes
 * `anyOf: [{type: "string", format: "integer", default: 0}, {type: "integer", …}]`
 * for the string it coerces, which declares `""` valid; the number's own
 * schema is what the route takes.
 */
function withoutCoercion(parameter: { schema?: unknown }): void {
  const schema = parameter.schema as { anyOf?: Record<string, unknown>[] } | undefined;
  const members = schema?.anyOf;
  if (!members || members.length !== 2) return;
  const coerced = members.findIndex(
    (m) => m.type === "string" && (m.format === "integer" || m.format === "number"),
  );
  if (coerced < 0) return;
  const { anyOf: _, ...outer } = schema as Record<string, unknown>;
  parameter.schema = { ...outer, ...members[1 - coerced] };
}

const errorAnswer = (description: string, extra: Record<string, unknown> = {}) => ({
  description,
  content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
  ...extra,
});

/** The challenge a 401 or 403 carries (RFC 6750). */
const challenge = {
  "WWW-Authenticate": {
    description: "Bearer, with the error and its description",
    schema: { type: "string" },
  },
};

/**
 * The answers src/http-rules.ts and src/auth give on every route, declared
 * where they can occur: 503 past the requests-in-flight cap on all of them;
 * 408 and 413 on those that read a body; 401 on those that check callers
 * (`security`), 403 where the route declares it. A route's own 503 (with
 * its Retry-After) stays.
 */
function withRuleAnswers(operation: Operation): void {
  operation.responses ??= {};
  const responses = operation.responses;
  // A 204 has no body (RFC 9110); Elysia writes its `t.Void()` as content.
  if (responses["204"]) delete responses["204"].content;
  if (operation.security) {
    responses["401"] ??= errorAnswer(
      "No bearer token, or one this API does not accept (expired, another issuer, audience or key)",
      {
        headers: challenge,
      },
    );
    if (responses["403"]) Object.assign(responses["403"], { headers: challenge });
  }
  responses["503"] ??= errorAnswer(
    "Too many requests at once, or the Resonate server did not answer: ask again after Retry-After seconds",
    {
      headers: unavailableResponse.headers,
    },
  );
  if (!operation.requestBody) return;
  responses["408"] ??= errorAnswer("The body did not arrive in time; the connection is closed");
  responses["413"] ??= errorAnswer("The body is larger than the route reads");
}

/** The docs page's own files: Swagger UI from the pinned swagger-ui-dist package, and the line that starts it. */
const SWAGGER_UI = dirname(createRequire(import.meta.url).resolve("swagger-ui-dist/package.json"));
const ASSETS: Record<string, { type: string; read: () => string | Uint8Array }> = {
  "swagger-ui.css": {
    type: "text/css; charset=utf-8",
    read: () => readFileSync(join(SWAGGER_UI, "swagger-ui.css")),
  },
  "swagger-ui-bundle.js": {
    type: "text/javascript; charset=utf-8",
    read: () => readFileSync(join(SWAGGER_UI, "swagger-ui-bundle.js")),
  },
  // No validator: Swagger UI would send the document to validator.swagger.io.
  "docs.js": {
    type: "text/javascript; charset=utf-8",
    read: () =>
      `window.ui = SwaggerUIBundle({ url: "/docs/json", dom_id: "#docs", validatorUrl: null, deepLinking: true });\n`,
  },
};
const loaded = new Map<string, string | Uint8Array>();

/** A docs asset by file name (read once), or undefined for any other name. */
export function docsAsset(name: string): { type: string; body: string | Uint8Array } | undefined {
  const asset = ASSETS[name];
  if (!asset) return undefined;
  let body = loaded.get(name);
  if (body === undefined) {
    body = asset.read();
    loaded.set(name, body);
  }
  return { type: asset.type, body };
}

export const docsPage = (title: string) => `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>${title}</title>
    <link rel="stylesheet" href="/docs/assets/swagger-ui.css" />
  </head>
  <body>
    <div id="docs"></div>
    <script src="/docs/assets/swagger-ui-bundle.js"></script>
    <script src="/docs/assets/docs.js"></script>
  </body>
</html>
`;
