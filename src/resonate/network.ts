import {
  isMessage,
  isResponse,
  LocalNetwork,
  type Message,
  type Network,
  type Request,
  Resonate,
  ResonateTimeoutException,
  type Response,
} from "@resonatehq/sdk";
import type { Config } from "../config.ts";
import { useFastEncoder } from "./codec.ts";
import type { EventStream } from "./http-client.ts";
import { HeartbeatingNetwork } from "./task-leases.ts";
import { defaultTransport, type Transport } from "./transport.ts";

/**
 * The Resonate client of a process in `group`: over `SocketNetwork` to the
 * server at `RESONATE_URL`, or in-process (the SDK's local network) when
 * there is none; either way with heartbeats that name the tasks this
 * process holds (`HeartbeatingNetwork`), so a step longer than `ttl` keeps
 * its lease, and with `FastJsonEncoder` in its codec.
 */
export function resonateClient(
  config: Pick<Config, "resonateUrl" | "resonateToken" | "resonateTimeoutMs" | "resonateTtlMs">,
  group: string,
  pid: string,
): ResonateClient {
  const ttl = config.resonateTtlMs;
  const inner: LocalNetwork | SocketNetwork =
    config.resonateUrl === undefined
      ? new LocalNetwork({ pid, group })
      : new SocketNetwork({
          url: config.resonateUrl,
          group,
          pid,
          token: config.resonateToken,
          timeoutMs: config.resonateTimeoutMs,
          warn: (message) => console.warn(`resonate (${group}/${pid}): ${message}`),
        });
  const network = new HeartbeatingNetwork(inner, pid);
  return {
    resonate: withFastEncoder(new Resonate({ network, group, pid, ttl })),
    streamOpen: inner instanceof SocketNetwork ? inner.opened : Promise.resolve(),
  };
}

/** A process's Resonate client, and when it can be sent messages. */
export interface ResonateClient {
  resonate: Resonate;
  /**
   * Resolves once this process's message stream is open. Until then a
   * message for it finds no stream, and the real server drops it (a task is
   * offered again after its retry timeout, a result only when the SDK
   * registers its listener again), so a process reports ready after this.
   */
  streamOpen: Promise<void>;
}

function withFastEncoder(resonate: Resonate): Resonate {
  if (!useFastEncoder(resonate)) {
    console.warn(
      "resonate: this SDK's codec has no encoder to replace; payloads use its own (slower) encoding",
    );
  }
  return resonate;
}

export interface SocketNetworkOptions {
  /** The Resonate server's base URL (`http://` or `https://`). */
  url: string;
  /** This process's group and pid: its stream is `<url>/poll/<group>/<pid>`. */
  group: string;
  pid: string;
  /** Bearer token sent with every request and in the envelope (`head.auth`), as the SDK does. */
  token?: string | undefined;
  /** Time allowed for one protocol request (ms). */
  timeoutMs: number;
  /** Where a lost or refused message stream is reported; it is reopened either way. */
  warn?: (message: string) => void;
  /** How requests and the stream travel; by default Bun's sockets on Bun and `fetch` elsewhere. */
  transport?: Transport;
}

/** Statuses that carry a protocol answer; any other is a platform failure the SDK retries. */
const PROTOCOL_STATUSES = new Set([200, 300, 404, 409, 422, 501]);
const STREAM_BACKOFF_MS = { first: 1_000, max: 30_000 };

/**
 * The SDK's HTTP network (requests as JSON POSTs, messages over an SSE
 * stream at `/poll/<group>/<pid>`), with the same answers and failures as
 * its own `HttpNetwork` and `PollMessageSource`, but sent over
 * `HttpClient`'s kept-alive sockets on this thread instead of `fetch` where
 * the runtime is Bun (`fetch` elsewhere: see `defaultTransport`).
 * A non-protocol status, a timeout, a lost connection or an answer that
 * does not match the request throws `ResonateTimeoutException`, which the
 * SDK treats as a platform failure and retries. A lost stream is reopened
 * after 1 s, doubling up to 30 s, and starts over at 1 s once it opens.
 */
export class SocketNetwork implements Network {
  readonly unicast: string;
  readonly anycast: string;
  readonly #opts: SocketNetworkOptions;
  readonly #client: Transport;
  readonly #path: string;
  readonly #headers: Record<string, string>;
  readonly #callbacks: ((msg: Message) => void)[] = [];
  /** Resolves when the message stream first opens (and never rejects: it is reopened until then). */
  readonly opened: Promise<void>;
  #markOpened!: () => void;
  #stream: EventStream | undefined;
  #reopen: Timer | undefined;
  #attempt = 0;
  #stopped = false;

  constructor(opts: SocketNetworkOptions) {
    this.#opts = opts;
    const base = new URL(opts.url);
    this.#client = opts.transport ?? defaultTransport(base);
    this.#path = base.pathname + base.search;
    this.#headers = { "content-type": "application/json" };
    if (opts.token) this.#headers.authorization = `Bearer ${opts.token}`;
    this.unicast = `poll://uni@${opts.group}/${opts.pid}`;
    this.anycast = `poll://any@${opts.group}/${opts.pid}`;
    this.opened = new Promise((resolve) => {
      this.#markOpened = resolve;
    });
    this.#open();
  }

  match(target: string): string {
    return `poll://any@${target}`;
  }

  async init(): Promise<void> {}

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#reopen);
    this.#stream?.close();
    this.#client.close();
  }

  recv(callback: (msg: Message) => void): void {
    this.#callbacks.push(callback);
  }

  send = (async (req: Request): Promise<Response> => {
    const sent = this.#opts.token ? { ...req, head: { ...req.head, auth: this.#opts.token } } : req;
    let res: Awaited<ReturnType<Transport["request"]>>;
    try {
      res = await this.#client.request(
        "POST",
        this.#path,
        this.#headers,
        JSON.stringify(sent),
        this.#opts.timeoutMs,
      );
    } catch (error) {
      throw new ResonateTimeoutException(error instanceof Error ? error.message : String(error));
    }
    if (!PROTOCOL_STATUSES.has(res.status)) throw new ResonateTimeoutException(`HTTP ${res.status}`);
    if (res.status === 404 && !res.headers.get("content-type")?.includes("application/json"))
      throw new ResonateTimeoutException("legacy server detected");
    let body: unknown;
    try {
      body = JSON.parse(res.body);
    } catch {
      throw new ResonateTimeoutException("failed to parse response JSON");
    }
    if (!isResponse(body) || body.kind !== req.kind || body.head.corrId !== req.head.corrId)
      throw new ResonateTimeoutException("response did not match request");
    return body;
  }) as Network["send"];

  #open(): void {
    if (this.#stopped) return;
    const url = new URL(
      `${this.#opts.url}/poll/${encodeURIComponent(this.#opts.group)}/${encodeURIComponent(this.#opts.pid)}`,
    );
    const headers: Record<string, string> = { accept: "text/event-stream" };
    if (this.#opts.token) headers.authorization = `Bearer ${this.#opts.token}`;
    this.#client
      .openEventStream(
        url,
        headers,
        (event) => event.type === "message" && this.#deliver(event.data),
        this.#opts.timeoutMs,
      )
      .then((stream) => {
        this.#attempt = 0;
        this.#stream = stream;
        this.#markOpened();
        if (this.#stopped) stream.close();
        return stream.closed;
      })
      .then(
        (error) => this.#lost(error),
        (error: unknown) => this.#lost(error),
      );
  }

  #lost(error: unknown): void {
    this.#stream = undefined;
    if (this.#stopped) return;
    this.#attempt++;
    const delay = Math.min(STREAM_BACKOFF_MS.first * 2 ** (this.#attempt - 1), STREAM_BACKOFF_MS.max);
    this.#opts.warn?.(`message stream lost (${String(error)}); reopening in ${delay} ms`);
    this.#reopen = setTimeout(() => this.#open(), delay);
  }

  #deliver(data: string): void {
    let msg: unknown;
    try {
      msg = JSON.parse(data);
    } catch {
      this.#opts.warn?.(`message that is not JSON ignored: ${data.slice(0, 200)}`);
      return;
    }
    if (!isMessage(msg)) {
      this.#opts.warn?.(`message of unknown shape ignored: ${data.slice(0, 200)}`);
      return;
    }
    for (const callback of this.#callbacks) {
      // One failing receiver must not cost the stream, or the messages after this one.
      try {
        callback(msg);
      } catch (error) {
        this.#opts.warn?.(`a receiver of ${msg.kind} failed: ${String(error)}`);
      }
    }
  }
}
