import { randomUUID } from "node:crypto";
import type { Network, PromiseRecord } from "@resonatehq/sdk";

/** The protocol version SDK 0.11.4 sends in every request head (its `util.VERSION`, not exported). */
export const PROTOCOL_VERSION = "2026-04-01";

export type PromiseSearchState =
  | "pending"
  | "resolved"
  | "rejected"
  | "rejected_canceled"
  | "rejected_timedout";

export interface PromiseSearchQuery {
  state?: PromiseSearchState;
  /** Every one must be among a promise's tags, with this value. */
  tags?: Record<string, string>;
  limit: number;
  cursor?: string;
}

/** One page of `promise.search`: in the server's order (ascending id), and where the next page starts, if any. */
export interface PromiseSearchPage {
  promises: PromiseRecord[];
  cursor?: string;
}

export type PromiseSearch = (query: PromiseSearchQuery) => Promise<PromiseSearchPage>;

/** A search the server refused or cannot do (its status: 400 a bad cursor, 501 a server without search, …). */
export class PromiseSearchError extends Error {
  override name = "PromiseSearchError";
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** `promise.search` over `network`, which the SDK's client has no method for. */
export function promiseSearch(network: Pick<Network, "send">): PromiseSearch {
  return async (query) => {
    const res = (await network.send({
      kind: "promise.search",
      head: { corrId: randomUUID(), version: PROTOCOL_VERSION },
      data: query,
    })) as { head: { status: number }; data: unknown };
    if (res.head.status !== 200)
      throw new PromiseSearchError(
        res.head.status,
        typeof res.data === "string" ? res.data : JSON.stringify(res.data),
      );
    return res.data as PromiseSearchPage;
  };
}
