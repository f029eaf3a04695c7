import { timingSafeEqual } from "node:crypto";
import { isMessage, type Message } from "@resonatehq/sdk";
import { readAtMost } from "../read-body.ts";

/**
 * The receiving end of the Resonate server's HTTP push: when a process
 * registers its listeners with an `http://` address, the server POSTs each
 * message for it there (`{"kind":"unblock","head":{},"data":{"promise":…}}`)
 * instead of writing it to the process's message stream, one request per
 * message, with `Authorization: Bearer <token>` (`--transports-http-push-
 * auth-mode bearer --transports-http-push-auth-token <token>`).
 *
 * The server sends each message once and drops it whatever the answer, and
 * sends the next one only after this one is answered: the handler answers
 * at once and never waits for what the message leads to.
 *
 * A message is a result this process will answer callers with, so only the
 * server may send one: the token is checked before the body is read, and
 * only `POST /messages/<pid>` of this process is taken (an address left
 * registered by an earlier process on the same port finds a 404).
 */
export interface PushReceiverOptions {
  /** This process's Resonate pid: the last segment of its address. */
  pid: string;
  /** The token the server sends. */
  token: string;
  /** Largest body taken (bytes); a larger one is a 413. `PUSH_MAX_BODY_BYTES` by default. */
  maxBodyBytes?: number;
  /** Where a message goes: the network's receivers. */
  receive(message: Message): void;
  /** Where a refused or unreadable delivery is reported. */
  warn(message: string): void;
  /** Told the outcome of every request. */
  counted?(outcome: PushOutcome): void;
}

/** What became of one request to the listener. */
export type PushOutcome = "delivered" | "unauthorized" | "not_found" | "invalid" | "too_large";

/** Largest message the listener takes: a result carries a job's whole value. */
export const PUSH_MAX_BODY_BYTES = 16 * 2 ** 20;

/** The path a process's messages are pushed to. */
export function pushPath(pid: string): string {
  return `/messages/${encodeURIComponent(pid)}`;
}

/** The address a process registers: `http://host:port/messages/<pid>` (IPv6 hosts in brackets). */
export function pushAddress(host: string, port: number, pid: string): string {
  return `http://${host.includes(":") ? `[${host}]` : host}:${port}${pushPath(pid)}`;
}

/** `fetch`-style handler of a process's push listener, for `Bun.serve` and `Deno.serve` alike. */
export function pushReceiver(opts: PushReceiverOptions): (request: Request) => Promise<Response> {
  const path = pushPath(opts.pid);
  const maxBodyBytes = opts.maxBodyBytes ?? PUSH_MAX_BODY_BYTES;
  const expected = new TextEncoder().encode(`Bearer ${opts.token}`);
  const authorized = (header: string | null): boolean => {
    if (header === null) return false;
    const given = new TextEncoder().encode(header);
    return given.length === expected.length && timingSafeEqual(given, expected);
  };
  const json = (
    outcome: PushOutcome,
    status: number,
    error: string,
    headers: Record<string, string> = {},
  ): Response => {
    opts.counted?.(outcome);
    return Response.json({ error }, { status, headers });
  };
  return async (request) => {
    const url = new URL(request.url);
    if (url.pathname !== path) return json("not_found", 404, `no receiver at ${url.pathname}`);
    if (request.method !== "POST") return json("not_found", 405, "messages are POSTed", { allow: "POST" });
    if (!authorized(request.headers.get("authorization"))) {
      opts.warn(`push refused: ${request.headers.has("authorization") ? "wrong" : "no"} bearer token`);
      return json("unauthorized", 401, "a bearer token the Resonate server sends is required", {
        "www-authenticate": "Bearer",
      });
    }
    const length = Number(request.headers.get("content-length") ?? 0);
    if (length > maxBodyBytes) return json("too_large", 413, `a message is at most ${maxBodyBytes} bytes`);
    let text: string | undefined;
    try {
      text = await readAtMost(request, maxBodyBytes);
    } catch (error) {
      return json("invalid", 400, `body could not be read: ${String(error)}`);
    }
    if (text === undefined) return json("too_large", 413, `a message is at most ${maxBodyBytes} bytes`);
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch {
      opts.warn(`push that is not JSON refused: ${text.slice(0, 200)}`);
      return json("invalid", 400, "body is not JSON");
    }
    if (!isMessage(message)) {
      opts.warn(`push of unknown shape refused: ${text.slice(0, 200)}`);
      return json("invalid", 422, "body is not a Resonate message (an execute or an unblock)");
    }
    opts.receive(message);
    opts.counted?.("delivered");
    return new Response(null, { status: 204 });
  };
}
