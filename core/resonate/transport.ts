import {
  type EventStream,
  EventStreamParser,
  HttpClient,
  HttpClientError,
  type HttpResponse,
  openEventStream,
  type ServerSentEvent,
} from "./http-client.ts";

/**
 * How a process's Resonate network reaches the server: JSON requests, and
 * one Server-Sent Events stream. Failures of either reject with an
 * `HttpClientError`.
 */
export interface Transport {
  request(
    method: string,
    path: string,
    headers: Record<string, string>,
    body: string,
    timeoutMs: number,
  ): Promise<HttpResponse>;
  /** Resolves once the server answered 200 with `text/event-stream`. */
  openEventStream(
    url: URL,
    headers: Record<string, string>,
    onEvent: (event: ServerSentEvent) => void,
    timeoutMs: number,
  ): Promise<EventStream>;
  close(): void;
}

/** Kept-alive Bun sockets on this thread (`HttpClient`); only where `Bun.connect` exists. */
export function socketTransport(base: URL): Transport {
  const client = new HttpClient(base);
  return {
    request: (method, path, headers, body, timeoutMs) =>
      client.request(method, path, headers, body, timeoutMs),
    openEventStream,
    close: () => client.close(),
  };
}

/** `fetch`, for runtimes without Bun's sockets (Deno). */
export function fetchTransport(base: URL): Transport {
  const streams = new Set<AbortController>();
  return {
    async request(method, path, headers, body, timeoutMs) {
      try {
        const res = await fetch(new URL(path, base), {
          method,
          headers,
          body,
          signal: AbortSignal.timeout(timeoutMs),
        });
        return { status: res.status, headers: new Map(res.headers), body: await res.text() };
      } catch (error) {
        throw new HttpClientError(error instanceof Error ? error.message : String(error));
      }
    },
    async openEventStream(url, headers, onEvent, timeoutMs) {
      const abort = new AbortController();
      streams.add(abort);
      const timer = setTimeout(
        () => abort.abort(new HttpClientError(`no answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
      let res: Response;
      try {
        res = await fetch(url, { headers, signal: abort.signal });
      } catch (error) {
        streams.delete(abort);
        throw new HttpClientError(error instanceof Error ? error.message : String(error));
      } finally {
        clearTimeout(timer);
      }
      const type = res.headers.get("content-type") ?? "";
      if (res.status !== 200 || !type.startsWith("text/event-stream") || !res.body) {
        streams.delete(abort);
        abort.abort();
        throw new HttpClientError(`event stream answered ${res.status} ${type}`);
      }
      const parser = new EventStreamParser(onEvent);
      const reader = res.body.getReader();
      const closed = (async (): Promise<Error> => {
        try {
          for (;;) {
            const { done, value } = await reader.read();
            if (done) return new HttpClientError("event stream ended");
            parser.feed(value);
          }
        } catch (error) {
          return new HttpClientError(error instanceof Error ? error.message : String(error));
        } finally {
          streams.delete(abort);
        }
      })();
      return { closed, close: () => abort.abort() };
    },
    close() {
      for (const abort of streams) abort.abort();
      streams.clear();
    },
  };
}

/** The transport of this runtime: Bun's sockets on Bun, `fetch` elsewhere. */
export function defaultTransport(base: URL): Transport {
  return typeof globalThis.Bun?.connect === "function" ? socketTransport(base) : fetchTransport(base);
}
