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

/**
 * The Server-Sent Events side of the server: one stream per `GET
 * /poll/:group/:pid`, and the routing of messages to them.
 *
 * Routing: `uni@group/pid` goes to that pid's stream only; `any@group/pid`
 * goes to that pid if it is connected and otherwise to any stream of the
 * group; `any@group` to any stream of the group (round robin). A message
 * with no matching stream is not delivered.
 */
export class Hub {
  readonly #groups = new Map<string, Map<string, Connection>>();
  readonly #cursor = new Map<string, number>();
  readonly #keepAliveMs: number;

  constructor(opts: { keepAliveMs: number }) {
    this.#keepAliveMs = opts.keepAliveMs;
  }

  /** Number of open streams, for the health endpoint. */
  get size(): number {
    let n = 0;
    for (const pids of this.#groups.values()) n += pids.size;
    return n;
  }

  /** Opens a stream for `group`/`pid`; a second stream for the same pid replaces the first. */
  open(group: string, pid: string, signal: AbortSignal): Response {
    let keepAlive: ReturnType<typeof setInterval> | undefined;
    let connection: Connection | undefined;
    const detach = () => {
      if (keepAlive) clearInterval(keepAlive);
      keepAlive = undefined;
      const pids = this.#groups.get(group);
      if (connection && pids?.get(pid) === connection) {
        pids.delete(pid);
        if (pids.size === 0) this.#groups.delete(group);
      }
    };
    const stream = new ReadableStream<Uint8Array>({
      start: (controller) => {
        let open = true;
        connection = {
          group,
          pid,
          send: (frame) => {
            if (!open || signal.aborted) return false;
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
        const pids = this.#groups.get(group) ?? new Map<string, Connection>();
        this.#groups.set(group, pids);
        pids.get(pid)?.close();
        pids.set(pid, connection);
        signal.addEventListener("abort", () => connection?.close(), { once: true });
        connection.send(": connected\n\n");
        if (this.#keepAliveMs > 0)
          keepAlive = setInterval(() => connection?.send(": keep-alive\n\n"), this.#keepAliveMs);
      },
      cancel: () => {
        detach();
      },
    });
    return new Response(stream, {
      headers: {
        "content-type": "text/event-stream",
        "cache-control": "no-cache",
        connection: "keep-alive",
        "x-accel-buffering": "no",
      },
    });
  }

  /** Writes `message` to a stream that `address` names; false when none is connected. */
  deliver(address: string, message: Message): boolean {
    const target = parsePollAddress(address);
    if (!target) return false;
    const frame = `data: ${JSON.stringify(message)}\n\n`;
    const pids = this.#groups.get(target.group);
    if (!pids || pids.size === 0) return false;
    if (target.pid !== undefined) {
      const exact = pids.get(target.pid);
      if (exact?.send(frame)) return true;
      if (target.cast === "uni") return false;
    }
    const all = [...pids.values()];
    const start = this.#cursor.get(target.group) ?? 0;
    for (let i = 0; i < all.length; i++) {
      const connection = all[(start + i) % all.length];
      if (connection?.send(frame)) {
        this.#cursor.set(target.group, (start + i + 1) % all.length);
        return true;
      }
    }
    return false;
  }

  /** Ends every stream (server shutdown). */
  closeAll(): void {
    for (const pids of [...this.#groups.values()]) {
      for (const connection of [...pids.values()]) connection.close();
    }
  }
}
