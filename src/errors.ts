import { ResonateTimeoutException } from "@resonatehq/sdk";
import { Elysia, t, ValidationError } from "elysia";
import { logRequestFailure } from "./observability/request-context.ts";

/** The one error shape every route answers with. */
export const ErrorBody = t.Object({
  error: t.Object({
    code: t.String({ description: "stable, for programs: not_found, validation_failed, conflict, …" }),
    message: t.String({ description: "for people" }),
    details: t.Optional(t.Unknown({ description: "what was wrong, field by field, where it applies" })),
  }),
});
export type ErrorBody = typeof ErrorBody.static;

/** An error a route means to answer with: its status, a stable code, a message for people. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "HttpError";
  }
}

export const notFound = (what: string) => new HttpError(404, "not_found", `${what} not found`);
export const conflict = (message: string, details?: unknown) =>
  new HttpError(409, "conflict", message, details);
export const unprocessable = (code: string, message: string, details?: unknown) =>
  new HttpError(422, code, message, details);
export const unavailable = (message: string, retryAfterSeconds: number, code = "unavailable") =>
  new HttpError(503, code, message, undefined, { "retry-after": String(retryAfterSeconds) });

function body(code: string, message: string, details?: unknown): ErrorBody {
  return { error: details === undefined ? { code, message } : { code, message, details } };
}

type SchemaLike = {
  anyOf?: SchemaLike[];
  type?: string;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  pattern?: string;
  const?: unknown;
  description?: string;
};

/** What a field must be, in words, from its schema (Elysia wraps numbers in unions, whose own message says little). */
export function expectation(schema: SchemaLike | undefined): string | undefined {
  if (!schema) return undefined;
  if (schema.anyOf?.length) {
    const consts = schema.anyOf.filter((s) => s.const !== undefined).map((s) => JSON.stringify(s.const));
    if (consts.length === schema.anyOf.length) return `must be one of ${consts.join(", ")}`;
    // Elysia accepts numeric strings for numbers: describe the number, not the string.
    return expectation(
      schema.anyOf.find((s) => s.type === "integer" || s.type === "number") ?? schema.anyOf[0],
    );
  }
  const range = (lo?: number, hi?: number, unit = "") =>
    lo !== undefined && hi !== undefined
      ? ` from ${lo} to ${hi}${unit}`
      : lo !== undefined
        ? ` of at least ${lo}${unit}`
        : hi !== undefined
          ? ` of at most ${hi}${unit}`
          : "";
  switch (schema.type) {
    case "integer":
      return `must be an integer${range(schema.minimum, schema.maximum)}`;
    case "number":
      return `must be a number${range(schema.minimum, schema.maximum)}`;
    case "string":
      return schema.pattern
        ? `must be a string matching ${schema.pattern}`
        : `must be a string${range(schema.minLength, schema.maxLength, " characters")}`;
    case "array":
      return `must be an array${range(schema.minItems, schema.maxItems, " items")}`;
    case "boolean":
      return "must be true or false";
    case "object":
      return "must be an object";
    default:
      return undefined;
  }
}

/** How much of an offending value an error repeats: enough to recognise it, never the whole of a large one. */
const PREVIEW_CHARS = 64;

/** The JSON of `value`, cut to `PREVIEW_CHARS` characters (with `…` and its full length when cut). */
export function preview(value: unknown): string {
  const json = JSON.stringify(value) ?? String(value);
  return json.length <= PREVIEW_CHARS ? json : `${json.slice(0, PREVIEW_CHARS)}… (${json.length} characters)`;
}

/** `/items/0/qty` → `items[0].qty` */
function fieldName(path: string): string {
  return path
    .split("/")
    .filter(Boolean)
    .map((part, i) => (/^\d+$/.test(part) ? `[${part}]` : i === 0 ? part : `.${part}`))
    .join("");
}

/** The message of a rejected durable function's value (an error, a string or anything else). */
export function errorMessage(value: unknown): string {
  if (typeof value === "object" && value !== null && "message" in value) return String(value.message);
  if (value === undefined) return "failed";
  return typeof value === "string" ? value : JSON.stringify(value);
}

/**
 * Turns every error into `{error: {code, message, details?}}`: HttpError as
 * it says, validation failures as 422 naming each field, unknown routes as
 * 404, malformed bodies as 400, anything else as a logged, plain 500.
 */
export const errorHandler = new Elysia({ name: "error-handler" }).onError(
  { as: "global" },
  ({ code, error, set, request }) => {
    set.headers["content-type"] = "application/json";
    if (error instanceof HttpError) {
      set.status = error.status;
      Object.assign(set.headers, error.headers);
      return body(error.code, error.message, error.details);
    }
    if (error instanceof ValidationError || code === "VALIDATION") {
      const v = error as ValidationError;
      // A query or path number out of range fails on its own ("property"), without its name.
      const where = v.type === "body" ? "body" : v.type === "property" ? "parameter" : v.type;
      const details = v.all.map((e) => {
        const field = fieldName("path" in e ? String(e.path) : "") || where;
        const expected = "schema" in e ? expectation(e.schema as SchemaLike) : undefined;
        const got = "value" in e && e.value !== undefined ? `, got ${preview(e.value)}` : " (missing)";
        return { field, message: expected ? `${expected}${got}` : String(e.message) };
      });
      const first = details[0];
      set.status = 422;
      return body(
        "validation_failed",
        first
          ? `invalid ${where}: ${first.field === where ? "" : `${first.field}: `}${first.message}`
          : `invalid ${where}`,
        details,
      );
    }
    if (code === "NOT_FOUND") {
      set.status = 404;
      return body(
        "not_found",
        `no route for ${request.method} ${new URL(request.url).pathname.slice(0, 200)}`,
      );
    }
    if (code === "PARSE" && error.cause instanceof HttpError) {
      // A rule a parse hook enforces (src/http-rules.ts, src/auth/index.ts): its own status and headers.
      set.status = error.cause.status;
      Object.assign(set.headers, error.cause.headers);
      return body(error.cause.code, error.cause.message, error.cause.details);
    }
    if (code === "PARSE") {
      set.status = 400;
      return body("malformed_body", "the request body could not be parsed as JSON");
    }
    if (error instanceof ResonateTimeoutException) {
      // The Resonate server did not answer (down, restarting, unreachable): nothing was decided; the same request again is safe.
      set.status = 503;
      set.headers["retry-after"] = "1";
      return body("resonate_unavailable", "the Resonate server did not answer; retry the same request");
    }
    const requestId = logRequestFailure(request, error);
    set.status = 500;
    set.headers["x-request-id"] = requestId;
    return body("internal_error", `internal error (request ${requestId})`);
  },
);
