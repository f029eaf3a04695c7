/**
 * How the chaos workload's clients talk to the API: like real ones behind
 * one address whose processes are restarted. A `503` with `Retry-After` is
 * the API saying "not now" (a process stopping, the Resonate server
 * away): waited out and asked again, not a failure. A connection error or
 * reset, a timeout, and any other `5xx` is retried too (every request
 * carries its own id, so asking again is safe, and through the same port
 * it reaches another process) but counted in `FailedRequests`: a rolling
 * restart done right causes none of them.
 */
import { readFileSync } from "node:fs";

/** Requests that failed on the wire or with a counted `5xx`, each attempt once. */
export interface FailedRequests {
  count: number;
  /** How many of each kind: `reset` (the connection reset before an answer), `connection` (any other error before one), `timeout`, `stream` (an event stream cut short), `5xx`. */
  by_kind: Record<string, number>;
  /** A few distinct ones, `<method> <route>: <what>`, in the order first seen. */
  samples: string[];
}

/** An empty tally. */
export const noFailedRequests = (): FailedRequests => ({ count: 0, by_kind: {}, samples: [] });

/** How many distinct samples a tally keeps. */
const MAX_SAMPLES = 12;

/** The route of a URL, its ids replaced: `/jobs/:id/cancel`, `/webhooks/approval/:id`. */
export function routeOf(url: string): string {
  const path = new URL(url).pathname;
  return path
    .replace(/^\/(jobs|orders|users|webhooks\/approval)\/[^/]+/, "/$1/:id")
    .replace(/^\/users\/:id\/orders\/[^/]+/, "/users/:id/orders/:id");
}

/** Counts one failed attempt, keeping a sample of it if it is new (numbers and ids aside). */
export function countFailure(
  tally: FailedRequests | undefined,
  kind: string,
  method: string,
  url: string,
  what: string,
): void {
  if (!tally) return;
  tally.count++;
  tally.by_kind[kind] = (tally.by_kind[kind] ?? 0) + 1;
  const sample = `${method} ${routeOf(url)}: ${what.replaceAll(/\s+/g, " ").slice(0, 240)}`;
  const key = (s: string) => s.replaceAll(/[0-9a-f]{8,}|\d+/gi, "#");
  if (tally.samples.length < MAX_SAMPLES && !tally.samples.some((s) => key(s) === key(sample)))
    tally.samples.push(sample);
}

/** Adds `more` into `into`. */
export function addFailures(into: FailedRequests, more: FailedRequests): void {
  into.count += more.count;
  for (const [kind, n] of Object.entries(more.by_kind)) into.by_kind[kind] = (into.by_kind[kind] ?? 0) + n;
  for (const sample of more.samples)
    if (into.samples.length < MAX_SAMPLES && !into.samples.includes(sample)) into.samples.push(sample);
}

/** What a failed fetch says: its error's code (Bun's `ECONNRESET`, `ConnectionRefused`, …) and message. */
export function describeError(error: unknown): { kind: "connection" | "reset" | "timeout"; what: string } {
  const e = error as Error & { code?: string };
  const timeout = e.name === "TimeoutError" || e.name === "AbortError";
  return {
    kind: timeout ? "timeout" : e.code === "ECONNRESET" ? "reset" : "connection",
    what: [e.code ?? e.name, e.message].filter(Boolean).join(" "),
  };
}

/**
 * Whether Linux hands the connections queued on a closing listening socket
 * to the other processes on its port (`net.ipv4.tcp_migrate_req=1`). With
 * 0, its default, the ones not yet accepted are reset, however the closing
 * process drains (docs/deploying.md).
 */
export function kernelMigratesRequests(): boolean {
  try {
    return readFileSync("/proc/sys/net/ipv4/tcp_migrate_req", "utf8").trim() === "1";
  } catch {
    return false;
  }
}

/**
 * What a restart of API processes sharing one port may not cause: every
 * failed attempt, but, where the kernel does not migrate queued
 * connections, the resets of those (each asked again, and answered, by the
 * client). The samples of the resets left out go too.
 */
export function failuresBeyondTheKernel(failed: FailedRequests): FailedRequests {
  if (kernelMigratesRequests() || !failed.by_kind.reset) return failed;
  const { reset, ...by_kind } = failed.by_kind;
  return {
    count: failed.count - (reset ?? 0),
    by_kind,
    samples: failed.samples.filter((s) => !s.includes("ECONNRESET")),
  };
}

/** `Retry-After` in ms (seconds or an HTTP date), or undefined when there is none. */
export function retryAfterMs(res: Response): number | undefined {
  const value = res.headers.get("retry-after");
  if (value === null || value.trim() === "") return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/** One attempt's answer: a status with its body and the pause `Retry-After` asked for, or no answer at all (`status` 0). */
export interface Attempt {
  status: number;
  text: string;
  /** For a `503` or `429` with `Retry-After`: how long it asked the client to wait (ms). */
  waitMs?: number;
}

/**
 * Sends one request and classifies the answer: a connection error,
 * timeout or `5xx` (but a `503` with `Retry-After`) is counted in `tally`.
 */
export async function attempt(
  url: string,
  init: RequestInit,
  tally: FailedRequests | undefined,
  timeoutMs = 15_000,
): Promise<Attempt> {
  const method = init.method ?? "GET";
  try {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.text();
    const waitMs = res.status === 503 || res.status === 429 ? retryAfterMs(res) : undefined;
    if (res.status >= 500 && !(res.status === 503 && waitMs !== undefined))
      countFailure(tally, "5xx", method, url, `${res.status} ${text}`);
    return { status: res.status, text, ...(waitMs === undefined ? {} : { waitMs }) };
  } catch (error) {
    const { kind, what } = describeError(error);
    countFailure(tally, kind, method, url, what);
    return { status: 0, text: what };
  }
}

/**
 * A client that keeps asking until the API answers below `500`: a `503`
 * with `Retry-After` after that long, anything else not answered (a
 * connection error, a `5xx`) with backoff, counted in `tally`. Gives up
 * (throws) after `retryForMs`.
 */
export async function persist(
  url: string,
  init: RequestInit,
  retryForMs: number,
  tally?: FailedRequests,
): Promise<{ status: number; body: Record<string, unknown>; retried: string[] }> {
  const deadline = Date.now() + retryForMs;
  let pause = 50;
  let last = "";
  /** The 5xx answers retried, `Retry-After` or not (a connection error is no answer: the API was down). */
  const retried: string[] = [];
  for (;;) {
    const answer = await attempt(url, init, tally);
    if (answer.status > 0 && answer.status < 500)
      return {
        status: answer.status,
        body: answer.text ? (JSON.parse(answer.text) as Record<string, unknown>) : {},
        retried,
      };
    last = answer.status === 0 ? answer.text : `${answer.status} ${answer.text.slice(0, 200)}`;
    if (answer.status > 0) retried.push(last);
    if (Date.now() > deadline)
      throw new Error(`${init.method ?? "GET"} ${url}: gave up after ${retryForMs} ms: ${last}`);
    if (answer.waitMs !== undefined) await Bun.sleep(answer.waitMs);
    else {
      await Bun.sleep(pause);
      pause = Math.min(pause * 2, 1_000);
    }
  }
}
