import type { Message } from "./engine-types.ts";

/** A parsed `poll://` address. */
export interface PollAddress {
  cast: "uni" | "any";
  group: string;
  pid: string | undefined;
}

/** Parses `poll://uni@group/pid`, `poll://any@group` and `poll://any@group/pid`; anything else is `undefined`. */
export function parsePollAddress(address: string): PollAddress | undefined {
  const match = /^poll:\/\/(uni|any)@([^/]+)(?:\/([^/]+))?$/.exec(address);
  if (!match) return undefined;
  const [, cast, group, pid] = match;
  if ((cast !== "uni" && cast !== "any") || group === undefined) return undefined;
  if (cast === "uni" && pid === undefined) return undefined;
  return {
    cast,
    group: decodeURIComponent(group),
    pid: pid === undefined ? undefined : decodeURIComponent(pid),
  };
}

interface Connection {
  group: string;
  pid: string;
  send(frame: string): boolean;
  close(): void;
}

const encoder = new TextEncoder();

/** Frames a stream may hold unsent before more are dropped: the real server's per-connection buffer. */
const STREAM_BUFFER = 100;

/**
 * The Server-Sent Events side of the server: one stream per `GET
 * /poll/:group/:pid`, and the routing of messages to them, as the real
 * server routes them.
 *
 * Routing: `uni@group/pid` goes to that pid's stream only; `any@group/pid`
 * goes to that pid if it is connected and otherwise to any stream of the
 * group; `any@group` to any stream of the group (round robin, where the
 * real server picks one at random). A second stream for the same pid is
 * kept beside the first, and messages addressed to the pid go to the
 * first, until the first ends (an `any@group` message may go to either). A stream holds at most 100 frames its client has not
 * taken; past that, and with no matching stream, a message is not
 * delivered. At most `maxConnections` streams are open; more are refused
 * with 503.
 */
export class Hub {
  readonly #groups = new Map<string, Connection[]>();
  readonly #cursor = new Map<string, number>();
  readonly #keepAliveMs: number;
  readonly #maxConnections: number;
  #size = 0;

  constructor(opts: { keepAliveMs: number; maxConnections: number }) {
    this.#keepAliveMs = opts.keepAliveMs;
    this.#maxConnections = opts.maxConnections;
  }

  /** Number of open streams, for the health endpoint. */
  get size(): number {
    return this.#size;
  }

  /** Opens a stream for `group`/`pid`, or answers 503 when `maxConnections` are open. */
  open(group: string, pid: string, signal: AbortSignal): Response {
    if (this.#size >= this.#maxConnections) {
      return new Response("Poll registration at capacity", { status: 503 });
    }
    let keepAlive: ReturnType<typeof setInterval> | undefined;
    let connection: Connection | undefined;
    const detach = () => {
      if (keepAlive) clearInterval(keepAlive);
      keepAlive = undefined;
      const connections = this.#groups.get(group);
      const at = connection ? (connections?.indexOf(connection) ?? -1) : -1;
      if (connections && at !== -1) {
        connections.splice(at, 1);
        this.#size--;
        if (connections.length === 0) this.#groups.delete(group);
      }
    };
    const stream = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          let open = true;
          connection = {
            group,
            pid,
            send: (frame) => {
              if (!open || signal.aborted) return false;
              if ((controller.desiredSize ?? 1) <= 0) return false;
              try {
                controller.enqueue(encoder.encode(frame));
                return true;
              } catch {
                open = false;
                detach();
                return false;
              }
            },
            close: () => {
              if (!open) return;
              open = false;
              detach();
              try {
                controller.close();
              } catch {
                // already closed by the client
              }
            },
          };
          const connections = this.#groups.get(group) ?? [];
          this.#groups.set(group, connections);
          connections.push(connection);
          this.#size++;
          signal.addEventListener("abort", () => connection?.close(), { once: true });
          connection.send(": connected\n\n");
          if (this.#keepAliveMs > 0)
            keepAlive = setInterval(() => connection?.send(": keep-alive\n\n"), this.#keepAliveMs);
          // A client that left before the stream started never fires its abort event.
          if (signal.aborted) connection.close();
        },
        cancel: () => {
          detach();
        },
      },
      { highWaterMark: STREAM_BUFFER },
    );
    return new Response(stream, {
      headers: {
        "content-type": "text/event-stream",
        "cache-control": "no-cache",
        connection: "keep-alive",
        "x-accel-buffering": "no",
      },
    });
  }

  /** Writes `message` to a stream that `address` names; false when none is connected or it is full. */
  deliver(address: string, message: Message): boolean {
    const target = parsePollAddress(address);
    if (!target) return false;
    const connections = this.#groups.get(target.group);
    if (!connections || connections.length === 0) return false;
    const frame = `data: ${JSON.stringify(message)}\n\n`;
    if (target.pid !== undefined) {
      const exact = connections.find((c) => c.pid === target.pid);
      if (exact) return exact.send(frame);
      if (target.cast === "uni") return false;
    }
    const next = (this.#cursor.get(target.group) ?? 0) % connections.length;
    this.#cursor.set(target.group, next + 1);
    return (connections[next] as Connection).send(frame);
  }

  /** Ends every stream (server shutdown). */
  closeAll(): void {
    for (const connections of [...this.#groups.values()]) {
      for (const connection of [...connections]) connection.close();
    }
  }
}
