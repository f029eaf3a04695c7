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
import { type PromiseSearch, promiseSearch } from "./search.ts";
import { type HandOff, HeartbeatingNetwork, handOffTasks, type TracedPromise } from "./task-leases.ts";
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
  push?: { address: string },
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
          pushAddress: push?.address,
          warn: (message) => console.warn(`resonate (${group}/${pid}): ${message}`),
        });
  const network = new HeartbeatingNetwork(inner, pid);
  return {
    resonate: withFastEncoder(new Resonate({ network, group, pid, ttl })),
    streamOpen: inner instanceof SocketNetwork ? inner.opened : Promise.resolve(),
    receive: (message) => (inner instanceof SocketNetwork ? inner.receive(message) : undefined),
    search: promiseSearch(network),
    traces: {
      traceOf: (id) => network.traceOf(id),
      takenAt: (id) => network.takenAt(id),
      onBlocked: (listener) => network.onBlocked(listener),
      onTracedPromise: (listener) => network.onTracedPromise(listener),
    },
    handOff: (deadline) =>
      handOffTasks(
        network,
        () => (inner instanceof SocketNetwork ? inner.stopReceiving() : undefined),
        deadline,
      ),
  };
}

/**
 * The trace tags of a promise whose task this process took (`traceparent`),
 * when a run stops to wait, and which traced promises a run's requests
 * created (`TracedPromise`).
 */
export interface RunTraces {
  traceOf(id: string): Readonly<Record<string, string>> | undefined;
  /** The version at which this process took task `id` (above 1: someone took it before). */
  takenAt(id: string): number | undefined;
  onBlocked(listener: (id: string) => void): void;
  onTracedPromise(listener: (created: TracedPromise) => void): void;
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
  /** Hands a message that came another way (HTTP push) to the SDK, as one from the stream. */
  receive(message: Message): void;
  /** What the spans of this process's runs need to know of its tasks (`RunTraces`). */
  traces: RunTraces;
  /** `promise.search` through the same network (the in-process one answers 501). */
  search: PromiseSearch;
  /**
   * A worker's stop: takes no new task, waits until `deadline` (epoch ms)
   * for the tasks it holds to finish, and hands back the rest (see
   * `handOffTasks`).
   */
  handOff(deadline: number): Promise<HandOff>;
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
  /**
   * An `http://` address the server pushes this process's own messages to
   * (its listeners' results), which `receive` is then handed; the stream
   * still carries what is sent to the group. `undefined`: all come over the stream.
   */
  pushAddress?: string | undefined;
}

/** Statuses that carry a protocol answer; any other is a platform failure the SDK retries. */
const PROTOCOL_STATUSES = new Set([200, 300, 404, 409, 422, 501]);
const STREAM_BACKOFF_MS = { first: 1_000, max: 30_000 };
/** After a refused token, requests wait this long before they go out again (doubling per refusal in a row). */
const AUTH_BACKOFF_MS = { first: 1_000, max: 30_000 };
/** What the server said when it refused a token, and what to do about it. */
const REFUSALS: Record<number, string> = {
  401: "the server refused RESONATE_TOKEN (missing, not signed by its key, expired, or the wrong issuer or audience)",
  403: "RESONATE_TOKEN's prefix does not cover this id (a token that is not admin may only touch ids that start with its prefix)",
};

/** The id a request concerns, as the server authorizes it; for the log line and the 403 back-off. */
function requestId(req: Request): string {
  const data = req.data as Record<string, unknown>;
  const action = data.action as { data?: { id?: unknown } } | undefined;
  const tasks = data.tasks as { id?: unknown }[] | undefined;
  const id = data.id ?? data.awaited ?? data.promiseId ?? action?.data?.id ?? tasks?.[0]?.id;
  return typeof id === "string" ? id : "";
}

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
 *
 * A refused token (401, or 403 for an id outside the token's prefix) fails
 * the request the same way, is reported once per cause (status and
 * message) through `warn`, and backs off: after a 401 every request waits
 * before it goes out (1 s, doubling to 30 s, until one is answered
 * otherwise); after a 403 so do the requests for that id. A stream refused
 * with 401 is reported once and reopened on its usual back-off.
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
  /** False once `stopReceiving()` closed the message stream for good. */
  #receiving = true;
  /** Causes of refusal already reported (`<status> <message>`). */
  readonly #reported = new Set<string>();
  /** Back-offs after refusals: `*` (a 401: every request) or an id (a 403), with when they end and the last delay. */
  readonly #backoff = new Map<string, { until: number; delayMs: number }>();

  constructor(opts: SocketNetworkOptions) {
    this.#opts = opts;
    const base = new URL(opts.url);
    this.#client = opts.transport ?? defaultTransport(base);
    this.#path = base.pathname + base.search;
    this.#headers = { "content-type": "application/json" };
    if (opts.token) this.#headers.authorization = `Bearer ${opts.token}`;
    this.unicast = opts.pushAddress ?? `poll://uni@${opts.group}/${opts.pid}`;
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

  /**
   * Closes the message stream for good and drops whatever still arrives on
   * it, while requests go on: a stopping worker takes no new task (the
   * server sends the group's next ones to its other processes) and finishes
   * or hands back the ones it holds.
   */
  stopReceiving(): void {
    this.#receiving = false;
    clearTimeout(this.#reopen);
    this.#stream?.close();
  }

  send = (async (req: Request): Promise<Response> => {
    const sent = this.#opts.token ? { ...req, head: { ...req.head, auth: this.#opts.token } } : req;
    const id = requestId(req);
    await this.#waitOutBackoff(id);
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
    if (res.status === 401 || res.status === 403) this.#refused(req.kind, id, res.status, res.body);
    else this.#backoff.delete(id);
    if (res.status !== 401) this.#backoff.delete("*");
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
    if (this.#stopped || !this.#receiving) return;
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
        if (this.#stopped || !this.#receiving) stream.close();
        return stream.closed;
      })
      .then(
        (error) => this.#lost(error),
        (error: unknown) => this.#lost(error),
      );
  }

  #lost(error: unknown): void {
    this.#stream = undefined;
    if (this.#stopped || !this.#receiving) return;
    this.#attempt++;
    const delay = Math.min(STREAM_BACKOFF_MS.first * 2 ** (this.#attempt - 1), STREAM_BACKOFF_MS.max);
    const refused = /event stream answered (40[13])\b/.exec(String(error))?.[1];
    if (refused) {
      const cause = `stream ${refused}`;
      if (!this.#reported.has(cause)) {
        this.#reported.add(cause);
        this.#opts.warn?.(
          `message stream refused: HTTP ${refused} ${refused === "401" ? "Unauthorized" : "Forbidden"}: ${REFUSALS[Number(refused)]}; reopening on a back-off up to ${STREAM_BACKOFF_MS.max} ms, and not reporting this again`,
        );
      }
    } else {
      this.#opts.warn?.(`message stream lost (${String(error)}); reopening in ${delay} ms`);
    }
    this.#reopen = setTimeout(() => this.#open(), delay);
  }

  /** Reports a refused token once per cause and starts or lengthens its back-off. */
  #refused(kind: string, id: string, status: number, body: string): void {
    let message = "";
    try {
      const data = (JSON.parse(body) as { data?: unknown }).data;
      message = typeof data === "string" ? data : JSON.stringify(data);
    } catch {
      message = body.slice(0, 200);
    }
    const cause = `${status} ${message}`;
    if (!this.#reported.has(cause)) {
      this.#reported.add(cause);
      this.#opts.warn?.(
        `request refused: HTTP ${status} ${JSON.stringify(message)} for ${kind}${id ? ` ${id}` : ""}: ${REFUSALS[status]}; backing off up to ${AUTH_BACKOFF_MS.max} ms, and not reporting this cause again`,
      );
    }
    const key = status === 401 ? "*" : id;
    if (this.#backoff.size > 1_000) this.#backoff.clear();
    const last = this.#backoff.get(key);
    const delayMs = last ? Math.min(last.delayMs * 2, AUTH_BACKOFF_MS.max) : AUTH_BACKOFF_MS.first;
    this.#backoff.set(key, { until: Date.now() + delayMs, delayMs });
  }

  /** Waits until no back-off holds requests for `id` (or all requests) any more. */
  async #waitOutBackoff(id: string): Promise<void> {
    for (;;) {
      const until = Math.max(this.#backoff.get("*")?.until ?? 0, this.#backoff.get(id)?.until ?? 0);
      const wait = until - Date.now();
      if (wait <= 0 || this.#stopped) return;
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }

  #deliver(data: string): void {
    if (!this.#receiving) return;
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
    this.receive(msg);
  }

  /** Hands a message to the SDK's receivers: one from the stream, or one pushed to `pushAddress`. */
  receive(msg: Message): void {
    if (!this.#receiving) return;
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
