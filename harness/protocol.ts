import { randomUUID } from "node:crypto";
import type { Network } from "@resonatehq/sdk";
import { PROTOCOL_VERSION, type PromiseSearch, promiseSearch } from "../core/resonate/search.ts";

export { PROTOCOL_VERSION };

/** A protocol reply: the HTTP status and the parsed envelope. */
export interface ProtocolReply<T = unknown> {
  status: number;
  body: { kind: string; head: { corrId: string; status: number; version: string }; data: T };
}

/**
 * Sends one protocol request (`POST <url>` with `{kind, head, data}`) the way
 * the SDK does, and returns the status and envelope, whatever the status.
 * For tests and tools that inspect a server without an SDK client.
 */
export async function protocolCall<T = unknown>(
  url: string,
  kind: string,
  data: unknown,
): Promise<ProtocolReply<T>> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ kind, head: { corrId: randomUUID(), version: PROTOCOL_VERSION }, data }),
  });
  return { status: res.status, body: (await res.json()) as ProtocolReply<T>["body"] };
}

/** A promise as the protocol returns it. */
export interface PromiseRecord {
  id: string;
  state: "pending" | "resolved" | "rejected" | "rejected_canceled" | "rejected_timedout";
  param: { headers?: Record<string, string>; data?: string };
  value: { headers?: Record<string, string>; data?: string };
  tags: Record<string, string>;
  timeoutAt: number;
  createdAt: number;
  settledAt?: number;
}

/** Reads a promise; `undefined` when the server does not know the id. */
export async function getPromise(url: string, id: string): Promise<PromiseRecord | undefined> {
  const reply = await protocolCall<{ promise: PromiseRecord }>(url, "promise.get", { id });
  if (reply.status === 404) return undefined;
  if (reply.status !== 200)
    throw new Error(`promise.get ${id}: ${reply.status} ${JSON.stringify(reply.body.data)}`);
  return reply.body.data.promise;
}

/** Reads a task's state; `undefined` when the server does not know the id. */
export async function getTask(
  url: string,
  id: string,
): Promise<{ id: string; state: string; version: number; pid?: string } | undefined> {
  const reply = await protocolCall<{ task: { id: string; state: string; version: number; pid?: string } }>(
    url,
    "task.get",
    { id },
  );
  if (reply.status === 404) return undefined;
  if (reply.status !== 200)
    throw new Error(`task.get ${id}: ${reply.status} ${JSON.stringify(reply.body.data)}`);
  return reply.body.data.task;
}

/** Decodes a promise value the SDK wrote (base64 of JSON). */
export function decodeValue(value: { data?: string } | undefined): unknown {
  if (!value?.data) return undefined;
  return JSON.parse(atob(value.data));
}

/**
 * `promise.search` on the server at `url` over plain HTTP, with `token` as
 * its bearer token when given: for tools that read a server without an SDK
 * client (`npm run versions`, the deploy drill).
 */
export function httpPromiseSearch(url: string, token?: string): PromiseSearch {
  // The client's own search, over a `send` that is one plain POST per request.
  return promiseSearch({
    send: (async (req: { head: object }) => {
      const res = await fetch(url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: JSON.stringify(token ? { ...req, head: { ...req.head, auth: token } } : req),
      });
      return res.json();
    }) as unknown as Network["send"],
  });
}
