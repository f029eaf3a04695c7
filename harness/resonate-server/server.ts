import { appendFileSync } from "node:fs";
import type { Authenticator } from "./auth.ts";
import { IndexedEngine } from "./engine.ts";
import type { Change, Engine, Request } from "./engine-types.ts";
import { isRequest } from "./engine-types.ts";
import { Hub } from "./hub.ts";
import { CommitLog, DEFAULT_SYNCHRONOUS, type Synchronous } from "./log.ts";
import type { ServerMetrics } from "./metrics.ts";
import { HTTP_PUSH_DEFAULTS, HttpPush, type HttpPushOptions, isHttpAddress } from "./push.ts";
import { type NumberSources, parseKeepingNumbers, parseSearch, SEARCH_KINDS, search } from "./search.ts";
import { ColdStore, commitOps, type OutboxEntry, outboxEntry, recover } from "./store.ts";
import type { StoreOp } from "./store-ops.ts";
import { PROTOCOL_VERSION, validateData, validateEnvelope, validateKind } from "./validate.ts";

/** Settings of a protocol server; the defaults are the real Resonate server's. */
export interface ServerOptions {
  /** SQLite file that holds all state, with its commit log segments (`<dbPath>.log.<n>`) next to it. */
  dbPath: string;
  /** Size at which a commit log segment is sealed and folded into the SQLite file (bytes). */
  segmentBytes: number;
  /**
   * When a commit is synced to disk: `normal` (the real server's SQLite
   * setting) answers once it is written, which survives the process being
   * killed; `full` syncs it first, which survives a power loss too.
   */
  synchronous: Synchronous;
  /** NDJSON file that gets one `{kind, now, req, res}` line per protocol call. */
  tracePath?: string | undefined;
  /** How long an execute message may stay unanswered before the task is offered again (ms). */
  retryTimeoutMs: number;
  /**
   * Accepted for parity with the real server's `--tasks-lease-timeout`.
   * As there, an SDK task's lease is the `ttl` its client asks for
   * (`new Resonate({ttl})`), so this value does not shorten it.
   */
  leaseTimeoutMs: number;
  /** How often expired timeouts are processed (ms): the real server's `--timeouts-poll-interval`. */
  tickMs: number;
  /**
   * How often pending messages are sent (ms): the real server's
   * `--messages-poll-interval`. A message waits for the next run of the
   * delivery loop, which takes it from the outbox for good and sends it once:
   * one that reaches no connected process is dropped, and the task's retry
   * timeout (or the SDK's listener refresh) makes up for it, as there.
   */
  messagesPollIntervalMs: number;
  /** Messages of each kind (`execute`, `unblock`) one run of the delivery loop takes, at most: `--messages-batch-size`. */
  messagesBatchSize: number;
  /**
   * How often an idle SSE stream gets a comment (ms); 0, the default, sends
   * none, as the real server sends none: a client must not depend on them.
   */
  keepAliveMs: number;
  /** Streams open at once, at most; more are refused with 503 (`--transports-http-poll-max-connections`). */
  maxConnections: number;
  /** Accept `debug.*` requests (the real server's `--debug`). */
  debug: boolean;
  /** Largest request body accepted (bytes). */
  maxBodyBytes: number;
  /** Called with the reason when the server can no longer guarantee durability and must stop. */
  onFatal: (error: unknown) => void;
  /** Where requests, messages and deliveries are counted (`--observability-metrics-port`); none by default. */
  metrics?: ServerMetrics | undefined;
  /** Tokens checked on every request and stream (`--auth-publickey`); none by default: every request is accepted. */
  auth?: Authenticator | undefined;
  /** How messages to `http://` and `https://` addresses are pushed (`--transports-http-push-*`, `push.ts`). */
  httpPush: HttpPushOptions;
}

export const SERVER_DEFAULTS = {
  retryTimeoutMs: 30_000,
  leaseTimeoutMs: 15_000,
  tickMs: 1_000,
  messagesPollIntervalMs: 100,
  messagesBatchSize: 100,
  keepAliveMs: 0,
  maxConnections: 1_000,
  maxBodyBytes: 1024 * 1024,
  segmentBytes: 8 * 1024 * 1024,
  synchronous: DEFAULT_SYNCHRONOUS,
  debug: false,
  httpPush: HTTP_PUSH_DEFAULTS,
} as const;

/** The engine's own hard-coded retry delay for pending tasks, rewritten to `retryTimeoutMs`. */
const ENGINE_RETRY_MS = 30_000;

/** Branches checked for eviction after one commit, at most: the rest wait for the next. */
const EVICTIONS_PER_COMMIT = 256;

/** Requests applied together, committed as one record of the commit log. */
interface Batch {
  changes: Change[];
  sent: OutboxEntry[];
  trace: unknown[];
  replies: (() => void)[];
  /** The batch holds a debug.reset: the state file is emptied before its writes. */
  reset: boolean;
  generation: number;
}

/** What `debug.snap` answers, in the parts that list promises and tasks. */
interface Snapshot {
  promises: unknown[];
  tasks: unknown[];
}

/** The branch a promise belongs to: its own id for one created outside any workflow. */
function branchOf(p: { id: string; tags: Record<string, string> }): string {
  return p.tags["resonate:branch"] ?? p.id;
}

/** A protocol answer: the HTTP status and the JSON envelope. */
export interface ProtocolReply {
  status: number;
  body: unknown;
}

/**
 * A Resonate server: the SDK's protocol engine, made durable by a commit
 * log that is written before every answer (and synced, with `synchronous:
 * "full"`) and folded into SQLite behind it, with messages sent to SSE
 * streams by a delivery loop, as the real server sends them.
 *
 * Memory holds what is still in play. Once every promise of a branch is
 * settled and done with and its last change is folded into SQLite, the
 * branch leaves memory, and a request that names one of its promises reads
 * it back from there; so memory stays the same size however long the server
 * runs, and the garbage collector has only the live state to trace.
 */
export class ProtocolServer {
  readonly hub: Hub;
  readonly #engine = new IndexedEngine();
  readonly #log: CommitLog;
  readonly #outbox = new Map<string, OutboxEntry>();
  readonly #opts: ServerOptions;
  readonly #cold: ColdStore;
  /** Segment of the last write of each promise or task id written since start (older ones are folded). */
  readonly #lastSeq = new Map<string, number>();
  /** Branches to try to evict once segment `seq` is folded, oldest first; `#evictHead` is the next. */
  #evictable: { seq: number; branch: string }[] = [];
  #evictHead = 0;
  /** Branches read back from SQLite, to evict again as soon as nothing holds them. */
  readonly #readBack = new Set<string>();
  /** Records are read back only once this segment is folded: the one that holds the last reset. */
  #readableFrom = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  #failed = false;
  /** During a tick with metrics on: the tasks whose timeout is due, so what the tick re-sends is counted. */
  #dueRetries: Map<string, 0 | 1> | undefined;
  readonly #push: HttpPush;
  /** Aborted by `stop()`: ends a push under way. */
  #stopPush = new AbortController();

  constructor(opts: ServerOptions) {
    this.#opts = opts;
    const recovered = recover(opts.dbPath, this.#engine);
    for (const entry of recovered.outbox) this.#outbox.set(entry.key, entry);
    this.#log = new CommitLog({
      dbPath: opts.dbPath,
      freeFiles: recovered.segmentFiles,
      nextSeq: recovered.nextSeq,
      segmentBytes: opts.segmentBytes,
      synchronous: opts.synchronous,
      onFatal: (error) => this.#fatal(error, undefined),
    });
    this.hub = new Hub({ keepAliveMs: opts.keepAliveMs, maxConnections: opts.maxConnections });
    this.#push = new HttpPush(opts.httpPush, {
      metrics: opts.metrics,
      warn: (message) => console.warn(`resonate server: ${message}`),
    });
    const cold = new ColdStore(opts.dbPath);
    this.#cold = cold;
    this.#engine.cold = {
      promise: (id) => {
        const p = this.#readable() ? cold.promise(id) : undefined;
        if (p) this.#readBack.add(branchOf(p));
        return p;
      },
      task: (id) => {
        const t = this.#readable() ? cold.task(id) : undefined;
        // Its promise comes back too, and the two leave together.
        if (t) this.#engine.promises.get(id);
        return t;
      },
    };
    // Everything recovered is in SQLite already.
    for (const p of this.#engine.promises.values()) this.#readBack.add(branchOf(p));
    this.#evict(Number.POSITIVE_INFINITY);
  }

  /** Where requests are counted, if anywhere. */
  get metrics(): ServerMetrics | undefined {
    return this.#opts.metrics;
  }

  /** What checks tokens, when the server was given a key. */
  get auth(): Authenticator | undefined {
    return this.#opts.auth;
  }

  /** Promises and tasks held in memory (the rest are in SQLite). */
  get resident(): { promises: number; tasks: number } {
    return this.#engine.resident;
  }

  /** Starts the timeout tick and the delivery loop. */
  start(): void {
    this.#timer ??= setInterval(() => this.tick(Date.now()), this.#opts.tickMs);
    this.#started = true;
    if (this.#stopPush.signal.aborted) this.#stopPush = new AbortController();
    this.#scheduleDelivery();
  }

  /** Stops the tick and the streams, writes everything applied so far, and closes the state file. */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#started = false;
    clearTimeout(this.#deliveryTimer);
    this.#deliveryTimer = undefined;
    this.#stopPush.abort();
    this.hub.closeAll();
    this.#commitBatch();
    await this.#log.close();
    this.#cold.close();
  }

  /** Answers one protocol request given as raw JSON text, once what it changed is on disk. */
  handle(raw: string, now = Date.now()): ProtocolReply | Promise<ProtocolReply> {
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch (error) {
      return this.#error(400, undefined, `Invalid request envelope: ${(error as Error).message}`);
    }
    // A search's data is read as serde reads it, which tells `10` from `10.0`: parsed again keeping
    // each number's text (searches are rare; every other request is parsed once).
    let sources: NumberSources | undefined;
    const kind =
      typeof parsed === "object" && parsed !== null ? (parsed as { kind?: unknown }).kind : undefined;
    if (typeof kind === "string" && SEARCH_KINDS.has(kind)) {
      const kept = parseKeepingNumbers(raw);
      if (kept.invalid) return this.#error(400, undefined, kept.invalid);
      parsed = kept.value;
      sources = kept.sources;
    }
    const invalid = validateEnvelope(parsed);
    if (invalid) return this.#error(invalid.status, parsed, invalid.message);
    const envelope = parsed as {
      kind: string;
      head: { corrId: string; version: string; auth?: string | null };
      data: Record<string, unknown>;
    };
    const auth = this.#opts.auth;
    // As on the real server: authenticated once the envelope and its version are valid, before the kind and data are read.
    if (!auth) return this.#handleValid(envelope, sources, now);
    return auth.authorize(envelope.head.auth, envelope.kind, envelope.data).then((refused) => {
      if (refused) {
        return this.#error(refused.status, parsed, refused.message);
      }
      return this.#handleValid(envelope, sources, now);
    });
  }

  #handleValid(
    envelope: { kind: string; head: { corrId: string; version: string }; data: Record<string, unknown> },
    sources: NumberSources | undefined,
    now: number,
  ): ProtocolReply | Promise<ProtocolReply> {
    if (sources) return this.#search(envelope, sources, now);
    const invalid =
      validateKind(envelope.kind, { debug: this.#opts.debug }) ?? validateData(envelope.kind, envelope.data);
    if (invalid) return this.#error(invalid.status, envelope, invalid.message);
    if (!isRequest(envelope)) return this.#error(400, envelope, "Invalid request: malformed data");
    return this.#apply(envelope, now);
  }

  /**
   * A search, answered from memory and from SQLite (`search.ts`). Like any
   * read it waits for a commit under way, so it never shows what is not yet
   * written.
   */
  #search(
    req: { kind: string; head: { corrId: string; version: string }; data: Record<string, unknown> },
    sources: NumberSources,
    now: number,
  ): ProtocolReply | Promise<ProtocolReply> {
    if (this.#failed) return this.#error(503, req, "server is stopping after a storage failure");
    const query = parseSearch(req.kind, req.data, sources);
    if ("status" in query) return this.#error(query.status, req, query.message);
    const data = search(req.kind, query, {
      engine: this.#engine,
      cold: this.#readable() ? this.#cold : undefined,
    });
    const { corrId, version } = req.head;
    const reply: ProtocolReply = {
      status: 200,
      body: { kind: req.kind, head: { corrId, status: 200, version }, data },
    };
    const traceLine = this.#opts.tracePath
      ? { kind: req.kind, now, req: req.data, res: reply.body }
      : undefined;
    if (!traceLine && !this.#batch) return reply;
    return new Promise<ProtocolReply>((resolve) => {
      const batch = this.#openBatch();
      if (traceLine) batch.trace.push(traceLine);
      batch.replies.push(() =>
        resolve(this.#failed ? this.#error(500, req, "internal server error") : reply),
      );
    });
  }

  /** Settles expired promises, releases expired leases and re-offers pending tasks whose retry timeout passed. */
  tick(now: number): void {
    if (this.#failed) return;
    this.#evict(EVICTIONS_PER_COMMIT);
    this.#dueRetries = this.#opts.metrics ? this.#engine.dueTaskTimeouts(now) : undefined;
    void this.#apply(
      { kind: "debug.tick", head: { corrId: "", version: "" }, data: { time: now } },
      now,
      false,
    );
    this.#dueRetries = undefined;
  }

  #apply(req: Request, now: number, trace = true): ProtocolReply | Promise<ProtocolReply> {
    if (this.#failed) return this.#error(503, req, "server is stopping after a storage failure");
    let result: ReturnType<Engine["apply"]>;
    try {
      result = this.#engine.apply(now, req);
    } catch (error) {
      // The engine checks invariants while it mutates; a broken one leaves
      // memory ahead of disk, so the only safe course is to stop and reload.
      return this.#fatal(error, req);
    }
    this.#engine.outgoing = [];
    const sent: OutboxEntry[] = [];
    for (const change of result.changes) {
      if (
        change.kind === "ttimeout.set" &&
        change.timeout.type === 0 &&
        change.timeout.timeout === now + ENGINE_RETRY_MS
      ) {
        this.#setRetryTimeout(change.timeout.id, now + this.#opts.retryTimeoutMs);
      } else if (change.kind === "message.send") {
        sent.push(outboxEntry(change.address, change.message));
        if (this.#dueRetries) this.#countRetry(change.message);
      }
    }
    const { corrId, version } = req.head;
    const data =
      req.kind === "debug.snap"
        ? {
            ...this.#withCold(result.response.data as Snapshot),
            messages: [...this.#outbox.values()].map(({ address, message }) => ({ address, message })),
          }
        : result.response.data;
    const reply: ProtocolReply = {
      status: result.response.head.status,
      body: {
        kind: result.response.kind,
        head: { corrId, status: result.response.head.status, version },
        data,
      },
    };
    const traceLine =
      trace && this.#opts.tracePath ? { kind: req.kind, now, req: req.data, res: reply.body } : undefined;

    if (req.kind === "debug.reset") {
      // Messages produced before the reset are dropped, and the state file is emptied before
      // anything applied after the reset is written.
      this.#generation++;
      // A push under way is not cut short: the real server's loop waits it out too, holding up what follows.
      // Nothing is read back from SQLite until the reset is folded into it (see #written).
      this.#readableFrom = Number.POSITIVE_INFINITY;
      this.#outbox.clear();
      this.#delivered.clear();
      const batch = this.#openBatch();
      batch.sent = [];
      batch.reset = true;
      batch.generation = this.#generation;
    }
    if (result.changes.length === 0 && !traceLine && !this.#batch) return reply;
    return new Promise<ProtocolReply>((resolve) => {
      const batch = this.#openBatch();
      batch.changes.push(...result.changes);
      batch.sent.push(...sent);
      if (traceLine) batch.trace.push(traceLine);
      batch.replies.push(() =>
        resolve(this.#failed ? this.#error(500, req, "internal server error") : reply),
      );
    });
  }

  /**
   * Group commit: everything applied in this turn of the event loop is
   * written as one record of the commit log (and synced, with one
   * fdatasync, when `synchronous` is `full`); then the answers go out and
   * the messages are delivered. Nothing is acknowledged or sent before it
   * is in the log.
   */
  #batch: Batch | undefined;
  /** Outbox entries the delivery loop took, removed from the file by the commit it opens for them. */
  readonly #delivered = new Set<string>();
  /** The delivery loop: due at the next multiple of the interval, and only while the outbox holds something. */
  #deliveryTimer: ReturnType<typeof setTimeout> | undefined;
  /** A run of the delivery loop has taken messages and not finished sending them: no other run starts. */
  #delivering = false;
  #started = false;
  /** The delivery loop's runs are due at multiples of the interval from here: the start, then the end of the last run. */
  #phase = Date.now();
  /** Bumped by debug.reset: messages of batches opened before it are not delivered. */
  #generation = 0;

  #openBatch(): Batch {
    if (!this.#batch) {
      this.#batch = {
        changes: [],
        sent: [],
        trace: [],
        replies: [],
        reset: false,
        generation: this.#generation,
      };
      setImmediate(() => this.#commitBatch());
    }
    return this.#batch;
  }

  #commitBatch(): void {
    const batch = this.#batch;
    if (!batch) return;
    this.#batch = undefined;
    if (!this.#failed) {
      try {
        const ops = commitOps(this.#engine, batch.changes, batch.sent, this.#delivered);
        if (batch.reset) ops.unshift(["reset"]);
        if (ops.length > 0) {
          this.#log.append(ops);
          this.#written(ops, batch.reset);
        }
        this.#delivered.clear();
      } catch (error) {
        this.#fatal(error, undefined);
      }
    }
    if (batch.trace.length > 0 && this.#opts.tracePath) {
      appendFileSync(this.#opts.tracePath, batch.trace.map((t) => `${JSON.stringify(t)}\n`).join(""));
    }
    for (const reply of batch.replies) reply();
    if (this.#failed || batch.generation !== this.#generation) return;
    for (const entry of batch.sent) this.#outbox.set(entry.key, entry);
    if (batch.sent.length > 0) this.#scheduleDelivery();
  }

  /** Notes where each promise and task went, and which branches may be done with once that is folded. */
  #written(ops: StoreOp[], reset: boolean): void {
    const seq = this.#log.seq;
    if (reset) {
      this.#readableFrom = seq;
      this.#lastSeq.clear();
      this.#evictable = [];
      this.#evictHead = 0;
      this.#readBack.clear();
    }
    for (const op of ops) {
      if (op[0] !== "put" || (op[1] !== "promises" && op[1] !== "tasks")) continue;
      this.#lastSeq.set(op[2], seq);
      if (op[1] === "promises" && op[3].state !== "pending") this.#evictLater(seq, branchOf(op[3]));
      else if (op[1] === "tasks" && op[3].state === "fulfilled") {
        const p = this.#engine.promises.get(op[2]);
        if (p) this.#evictLater(seq, branchOf(p));
      }
    }
    this.#evict(EVICTIONS_PER_COMMIT);
  }

  #evictLater(seq: number, branch: string): void {
    this.#evictable.push({ seq, branch });
  }

  /**
   * Evicts up to `limit` branches: those read back first, then those queued
   * whose segment is folded. A branch with a promise still in play stays (it
   * is queued again when that one settles); one with a change not folded
   * yet waits for the active segment.
   */
  #evict(limit: number): void {
    if (!this.#readable()) return;
    const folded = this.#log.foldedThrough;
    const onDisk = (id: string) => (this.#lastSeq.get(id) ?? 0) <= folded;
    const evict = (branch: string) => {
      const result = this.#engine.evictBranch(branch, onDisk);
      if (result === "later") this.#evictLater(this.#log.seq, branch);
      else if (result !== "busy") for (const id of result) this.#lastSeq.delete(id);
    };
    let done = 0;
    for (const branch of this.#readBack) {
      if (done++ >= limit) return;
      this.#readBack.delete(branch);
      evict(branch);
    }
    const queue = this.#evictable;
    while (this.#evictHead < queue.length && done < limit) {
      const next = queue[this.#evictHead] as { seq: number; branch: string };
      if (next.seq > folded) break;
      this.#evictHead++;
      done++;
      evict(next.branch);
    }
    if (this.#evictHead > 1024 && this.#evictHead * 2 > queue.length) {
      this.#evictable = queue.slice(this.#evictHead);
      this.#evictHead = 0;
    }
  }

  /** Whether SQLite holds what a read back would need: not while a reset is still to be folded. */
  #readable(): boolean {
    return this.#log.foldedThrough >= this.#readableFrom;
  }

  /** A debug snapshot with the promises and tasks that left memory added. */
  #withCold(snap: Snapshot): Snapshot {
    if (!this.#readable()) return snap;
    const promises = new Set(snap.promises.map((p) => (p as { id: string }).id));
    const tasks = new Set(snap.tasks.map((t) => (t as { id: string }).id));
    const cold = this.#cold.all();
    return {
      ...snap,
      promises: [
        ...snap.promises,
        ...cold.promises.filter((p) => !promises.has(p.id)).map((p) => this.#engine.promiseRecord(p)),
      ],
      tasks: [
        ...snap.tasks,
        ...cold.tasks.filter((t) => !tasks.has(t.id)).map((t) => this.#engine.taskRecord(t)),
      ],
    };
  }

  /**
   * Arms the delivery loop for its next run, as the real server's loop
   * (`loop { sleep(interval); process_batch().await }`): a message waits for
   * the next multiple of the interval since the last run ended (or since the
   * server started). Nothing is armed while the outbox is empty, which costs
   * an idle server nothing and delays no message, nor while a run is still
   * sending: the next one starts only after it.
   */
  #scheduleDelivery(): void {
    if (!this.#started || this.#delivering || this.#deliveryTimer !== undefined || this.#outbox.size === 0)
      return;
    const interval = this.#opts.messagesPollIntervalMs;
    const wait = interval - ((Date.now() - this.#phase) % interval);
    this.#deliveryTimer = setTimeout(() => {
      this.#deliveryTimer = undefined;
      this.#deliverBatch();
    }, wait);
  }

  /**
   * One run of the delivery loop, as the real server's `process_batch`: takes
   * up to `messagesBatchSize` execute and as many unblock messages from the
   * outbox, removes them from the file, and once that is written sends them,
   * the executes first, each to its address. A message that finds no stream,
   * or whose push fails, is gone, as on the real server.
   */
  #deliverBatch(): void {
    if (this.#failed) return;
    const limit = this.#opts.messagesBatchSize;
    const executes: OutboxEntry[] = [];
    const unblocks: OutboxEntry[] = [];
    for (const entry of this.#outbox.values()) {
      if (executes.length >= limit && unblocks.length >= limit) break;
      const list = entry.message.kind === "execute" ? executes : unblocks;
      if (list.length < limit) list.push(entry);
    }
    const taken = [...executes, ...unblocks];
    if (taken.length === 0) return;
    const batch = this.#openBatch();
    // A debug.reset that joins this batch afterwards must still keep these from being sent.
    const generation = this.#generation;
    for (const entry of taken) {
      this.#outbox.delete(entry.key);
      this.#delivered.add(entry.key);
    }
    const metrics = this.#opts.metrics;
    if (metrics) {
      if (executes.length > 0) metrics.messages.inc({ kind: "execute" }, executes.length);
      if (unblocks.length > 0) metrics.messages.inc({ kind: "unblock" }, unblocks.length);
    }
    this.#delivering = true;
    batch.replies.push(() => void this.#send(taken, generation));
  }

  /**
   * Sends the messages one run took, one after the other, as the real
   * server's loop awaits each `dispatcher.send`: a push is awaited until its
   * target answers or it times out, so a slow target delays every message
   * after it, in this run and in the runs after (the next run is armed only
   * once this one is done). Stream messages are written as they come, in
   * their place among the pushes. A debug.reset, a storage failure or a stop
   * ends the run; what it had not sent yet is gone.
   */
  async #send(taken: OutboxEntry[], generation: number): Promise<void> {
    const metrics = this.#opts.metrics;
    // This run's own: a stop aborts it, and a start after that does not revive the run.
    const stopped = this.#stopPush.signal;
    try {
      for (const entry of taken) {
        if (this.#failed || stopped.aborted || generation !== this.#generation) return;
        if (!entry.address.startsWith("poll://") && isHttpAddress(entry.address)) {
          await this.#push.send(entry.address, entry.message, stopped);
        } else {
          const delivered = this.hub.deliver(entry.address, entry.message);
          metrics?.deliveries.inc({ status: delivered ? "success" : "error" });
        }
      }
    } finally {
      this.#delivering = false;
      this.#phase = Date.now();
      this.#scheduleDelivery();
    }
  }

  /** Counts an `execute` that this tick sends again for a task whose lease expired or whose retry timeout passed. */
  #countRetry(message: { kind: string; data?: unknown }): void {
    if (message.kind !== "execute") return;
    const id = (message.data as { task?: { id?: string } } | undefined)?.task?.id;
    const type = id === undefined ? undefined : this.#dueRetries?.get(id);
    if (type === undefined) return;
    this.#opts.metrics?.retried.inc({
      kind: "execute",
      reason: type === 1 ? "lease_expired" : "retry_timeout",
    });
  }

  #setRetryTimeout(id: string, timeout: number): void {
    const entry = this.#engine.timeoutOf("t", id);
    if (entry) entry.timeout = timeout;
  }

  #fatal(error: unknown, req: { kind: string; head?: unknown } | undefined): ProtocolReply {
    this.#failed = true;
    this.#opts.onFatal(error);
    return this.#error(500, req, "internal server error");
  }

  /** An error envelope; `kind` and `corrId` are taken from the request where they can be read, as the real server does. */
  #error(status: number, req: unknown, message: string): ProtocolReply {
    const r = (typeof req === "object" && req !== null ? req : {}) as { kind?: unknown; head?: unknown };
    const head = (typeof r.head === "object" && r.head !== null ? r.head : {}) as { corrId?: unknown };
    return {
      status,
      body: {
        kind: typeof r.kind === "string" && r.kind !== "" ? r.kind : "unknown",
        head: {
          corrId: typeof head.corrId === "string" ? head.corrId : "0",
          status,
          version: PROTOCOL_VERSION,
        },
        data: message,
      },
    };
  }
}
