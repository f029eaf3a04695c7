import { waitFor } from "../../harness/index.ts";
import { defaultAuthorization } from "./api-auth.ts";

/**
 * A JSON request's method, headers and body. A string body is sent as it
 * is, so a test can send malformed JSON; anything else is JSON-encoded.
 */
export function jsonInit(method: string, body?: unknown, headers: Record<string, string> = {}): RequestInit {
  return {
    method,
    headers: body === undefined ? headers : { "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  };
}

/** A response's status, headers and parsed JSON body (undefined when the body is empty). */
export async function readReply(res: Response) {
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    body: (text ? JSON.parse(text) : undefined) as Record<string, unknown>,
  };
}

/** A response's status and parsed JSON body, without headers, so that `toEqual` can compare it whole. */
export async function json(res: Response) {
  const { status, body } = await readReply(res);
  return { status, body };
}

/** `headers` with the test's default `Authorization` for `path` unless they name one (`""`: none is sent). */
export async function withAuthorization(
  path: string,
  headers: Record<string, string>,
): Promise<Record<string, string>> {
  const given = Object.keys(headers).find((name) => name.toLowerCase() === "authorization");
  if (given === undefined) return { ...headers, authorization: await defaultAuthorization(path) };
  if (headers[given] !== "") return headers;
  const { [given]: _, ...rest } = headers;
  return rest;
}

/**
 * Sends a JSON request to the API at `api.url` and reads its reply, with the
 * tests' default token for `path` unless `headers` name an `authorization`.
 */
export async function call(
  api: { url: string },
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
) {
  return readReply(
    await fetch(`${api.url}${path}`, jsonInit(method, body, await withAuthorization(path, headers))),
  );
}

/** Asks the API at `api.url` for a quote, waiting up to `waitSeconds` for it (`Prefer: wait=`). */
export function requestQuote(api: { url: string }, body: unknown, waitSeconds: number) {
  return call(api, "POST", "/price-quote", body, { prefer: `wait=${waitSeconds}` });
}

/** Waits until `GET /jobs/:id` says done and returns the job. */
export function jobDone(api: { url: string }, id: string, timeout = 30_000) {
  return waitFor(
    async () => {
      const job = await call(api, "GET", `/jobs/${id}`);
      return job.body.status === "done" ? job.body : undefined;
    },
    { timeout, message: `${id} done` },
  );
}

/** Waits until `GET <path>` answers 200 and returns the answer. */
export function answers200(api: { url: string }, path: string, timeout = 30_000) {
  return waitFor(
    async () => {
      const res = await call(api, "GET", path);
      return res.status === 200 ? res : undefined;
    },
    { timeout, message: `GET ${path} answers 200` },
  );
}
