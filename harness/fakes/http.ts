/** Small helpers shared by the fake third parties. */

import { jsonReply } from "../http-reply.ts";

export const apiError = (status: number, type: string, message: string) =>
  jsonReply(status, { error: { type, message } });

/** Reads a JSON object body; a string is the error to answer with. */
export async function readJsonObject(req: Request): Promise<Record<string, unknown> | string> {
  let body: unknown;
  try {
    body = await req.json();
  } catch {
    return "body must be JSON";
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) return "body must be a JSON object";
  return body as Record<string, unknown>;
}

/** A stable fingerprint of a request body, to tell a retry from a different request reusing a key. */
export function fingerprint(body: Record<string, unknown>): string {
  const sorted = Object.keys(body)
    .sort()
    .map((k) => [k, body[k]]);
  return new Bun.CryptoHasher("sha256").update(JSON.stringify(sorted)).digest("hex");
}

export const randomId = (prefix: string) =>
  `${prefix}_${crypto.randomUUID().replaceAll("-", "").slice(0, 20)}`;

/** What an idempotent create found: a new record, the one stored under the key, or a key reused with another body. */
export type IdempotentOutcome<T> = { created: T } | { replay: T } | { conflict: true };

/** Answers an idempotent create the way payment APIs do: replay with a header, conflict with 422. */
export function idempotentReply<T>(
  key: string,
  outcome: IdempotentOutcome<T>,
  createdStatus: number,
): Response {
  if ("conflict" in outcome) {
    return apiError(
      422,
      "idempotency_error",
      `Idempotency-Key ${key} was already used with a different request`,
    );
  }
  if ("replay" in outcome) return jsonReply(200, outcome.replay, { "idempotent-replayed": "true" });
  return jsonReply(createdStatus, outcome.created);
}
