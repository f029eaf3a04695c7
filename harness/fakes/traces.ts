/** Requests a fake took with the `traceparent` they carried, kept in memory (the last 1000). */
const KEPT = 1_000;

/** What a fake was sent: the route, the order, and the W3C trace context of the caller, or `null` for none. */
export interface ReceivedTrace {
  route: string;
  orderId: string;
  traceparent: string | null;
}

/**
 * The `traceparent` each call to a fake carried, by order, so a test sees
 * that a caller's trace reached the third party (as the provider's own
 * tracing would record it).
 */
export class ReceivedTraces {
  readonly #received: ReceivedTrace[] = [];

  record(route: string, orderId: string, headers: Headers): void {
    this.#received.push({ route, orderId, traceparent: headers.get("traceparent") });
    if (this.#received.length > KEPT) this.#received.shift();
  }

  for(orderId: string): ReceivedTrace[] {
    return this.#received.filter((r) => r.orderId === orderId);
  }
}
