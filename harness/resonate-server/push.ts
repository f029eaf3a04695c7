import type { Message } from "./engine-types.ts";
import type { ServerMetrics } from "./metrics.ts";

/**
 * HTTP push: how a message reaches an `http://` or `https://` address, as
 * the real server v0.9.8 sends it (`src/transport/transport_http_push.rs`):
 * `POST <address>` with `Content-Type: application/json`, the message as the
 * body (the JSON a stream gets), and with `--transports-http-push-auth-mode
 * bearer` a `<header>: Bearer <token>` header. Fire and forget: a 2xx answer
 * is a delivery; any other status, a refused connection or a timeout is
 * logged and counted as a failed one, and the message is not sent again (the
 * delivery loop took it from the outbox for good). The answer's body is not
 * read.
 */

/** The HTTP push settings: the real server's `--transports-http-push-*` flags. */
export interface HttpPushOptions {
  /**
   * Send to http(s) addresses (`--transports-http-push-enabled`). When off,
   * such an address is still accepted (the real server's address check does
   * not read its settings) and its messages are dropped with a warning.
   */
  enabled: boolean;
  /**
   * `--transports-http-push-connect-timeout` (ms). Bun's `fetch` cannot time
   * the connect apart from the rest of the request, so this is accepted and
   * the whole request, connect included, is cut at `requestTimeoutMs`: a
   * target that never accepts the connection holds the delivery loop up to
   * that long here, against this long on the real server.
   */
  connectTimeoutMs: number;
  /** `--transports-http-push-request-timeout` (ms): from the start of the request until the answer's status and headers. */
  requestTimeoutMs: number;
  /** The header every push carries (`--transports-http-push-auth-mode bearer`): `value` is `Bearer <token>`. None by default. */
  auth: { header: string; value: string } | undefined;
}

/** The real server's defaults. */
export const HTTP_PUSH_DEFAULTS = {
  enabled: true,
  connectTimeoutMs: 10_000,
  requestTimeoutMs: 180_000,
  auth: undefined,
} as const satisfies HttpPushOptions;

/** Whether `address` is one HTTP push sends to: what the real server's `url::Url::parse` reads as an http or https URL. */
export function isHttpAddress(address: string): boolean {
  // WHATWG URL parsing, which the `url` crate also implements (it lowercases the scheme, as here).
  const url = URL.parse(address);
  return url !== null && (url.protocol === "http:" || url.protocol === "https:");
}

/** The HTTP push transport of one server. */
export class HttpPush {
  readonly #opts: HttpPushOptions;
  readonly #metrics: ServerMetrics | undefined;
  readonly #warn: (message: string) => void;

  constructor(
    opts: HttpPushOptions,
    deps: { metrics?: ServerMetrics | undefined; warn: (message: string) => void },
  ) {
    this.#opts = opts;
    this.#metrics = deps.metrics;
    this.#warn = deps.warn;
  }

  /**
   * Sends `message` to `address` once and resolves when the target has
   * answered, failed or timed out; never rejects. `stop` aborts it when the
   * server stops (not counted then).
   */
  async send(address: string, message: Message, stop: AbortSignal): Promise<void> {
    if (!this.#opts.enabled) {
      this.#warn(`HTTP push transport disabled, message dropped (address ${address})`);
      return;
    }
    const headers: Record<string, string> = { "content-type": "application/json" };
    const auth = this.#opts.auth;
    // One controller per push, cleared once it is answered, so a fast target leaves no timer behind.
    const abort = new AbortController();
    const timer = setTimeout(
      () => abort.abort(new DOMException("The operation timed out.", "TimeoutError")),
      this.#opts.requestTimeoutMs,
    );
    const onStop = () => abort.abort(stop.reason);
    stop.addEventListener("abort", onStop, { once: true });
    let res: Response;
    try {
      // A header name or value that HTTP does not allow fails the request, as it fails reqwest's.
      if (auth) headers[auth.header] = auth.value;
      res = await fetch(address, {
        method: "POST",
        headers,
        body: JSON.stringify(message),
        signal: abort.signal,
      });
    } catch (error) {
      if (stop.aborted) return;
      const kind = errorKind(error);
      this.#warn(
        `HTTP push delivery failed (address ${address}, ${kind}): ${(error as Error).message ?? String(error)}`,
      );
      this.#metrics?.deliveries.inc({ status: "error" });
      return;
    } finally {
      clearTimeout(timer);
      stop.removeEventListener("abort", onStop);
    }
    // The real server drops the answer unread; reading it would keep the loop waiting on its body.
    res.body?.cancel().catch(() => {});
    if (res.ok) {
      this.#metrics?.deliveries.inc({ status: "success" });
    } else {
      this.#warn(`HTTP push delivery rejected by target (address ${address}, status ${res.status})`);
      this.#metrics?.deliveries.inc({ status: "error" });
    }
  }
}

/** Error codes of Bun's `fetch` for a connection it could not make. */
const CONNECT_ERRORS = new Set(["ECONNREFUSED", "ECONNRESET", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND"]);

/** The real server's `error_kind` of a failed push: `connect`, `timeout` or `other`. */
function errorKind(error: unknown): "connect" | "timeout" | "other" {
  const e = error as { name?: unknown; code?: unknown } | undefined;
  if (e?.name === "TimeoutError") return "timeout";
  return typeof e?.code === "string" && CONNECT_ERRORS.has(e.code) ? "connect" : "other";
}
