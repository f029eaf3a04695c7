import { randomUUID } from "node:crypto";
import type { Message, Network, Request, Response } from "@resonatehq/sdk";
import { BoundedMap } from "../bounded-map.ts";
import { PROTOCOL_VERSION } from "./search.ts";

/** A task this process holds: acquired by its pid, at this version. */
export interface HeldTask {
  id: string;
  version: number;
}

/** The origin of a task id, as the Resonate server reads it: the id up to its first `.`. */
export function originOf(id: string): string {
  const dot = id.indexOf(".");
  return dot === -1 ? id : id.slice(0, dot);
}

/**
 * The tasks one process holds, learned from its own protocol requests and
 * their answers. A task is held from a `task.create` or `task.acquire` that
 * answers it acquired by this pid, until the SDK lets go of it: the answer
 * to its `task.fulfill` or `task.release`, or to a `task.suspend` other
 * than 300 (300: an awaited promise already settled, so it runs on). A
 * request that fails on the way lets go too, since the SDK gives a task up
 * when one of these fails: a task the process gave up while the server was
 * down must lapse and move on, not be kept alive by its heartbeats. A 404
 * or 409 to a fence (the lease is gone) lets go as well. Only the version
 * held is let go of.
 *
 * The SDK can also give a task up without a word (a promise it cannot
 * decode right after acquiring it), so a task is not heartbeated past its
 * promise's timeout either: no server would run it after that.
 */
export class TaskLeases {
  readonly #pid: string;
  /** id → the version held and the timeout of its promise. */
  readonly #held = new Map<string, { version: number; timeoutAt: number }>();

  constructor(pid: string) {
    this.#pid = pid;
  }

  /** The tasks held at `now`, in the order they were acquired. */
  held(now = Date.now()): HeldTask[] {
    const held: HeldTask[] = [];
    for (const [id, { version, timeoutAt }] of this.#held) {
      if (timeoutAt > now) held.push({ id, version });
      else this.#held.delete(id);
    }
    return held;
  }

  /** Notes what a request's answer, or its failure (`res` undefined), says about the tasks of this pid. */
  answered(req: Request, res: Response | undefined): void {
    const status = res?.head.status;
    switch (req.kind) {
      case "task.create":
      case "task.acquire": {
        if (status !== 200) return;
        const { task, promise } = res?.data as {
          task?: { id: string; state: string; version: number; pid?: string };
          promise?: { timeoutAt?: number };
        };
        if (task?.state === "acquired" && task.pid === this.#pid) {
          const timeoutAt = promise?.timeoutAt ?? Number.POSITIVE_INFINITY;
          this.#held.set(task.id, { version: task.version, timeoutAt });
        }
        return;
      }
      case "task.fulfill":
      case "task.release":
        this.#drop(req.data.id, req.data.version);
        return;
      case "task.suspend":
        if (status !== 300) this.#drop(req.data.id, req.data.version);
        return;
      case "task.fence":
        if (status === 404 || status === 409) this.#drop(req.data.id, req.data.version);
        return;
      default:
        return;
    }
  }

  /**
   * The heartbeats that keep every held task's lease: one request per
   * origin, since a server may refuse a list that mixes them; none when
   * nothing is held.
   */
  heartbeats(head: Request["head"]): Extract<Request, { kind: "task.heartbeat" }>[] {
    const byOrigin = new Map<string, HeldTask[]>();
    for (const task of this.held()) {
      const origin = originOf(task.id);
      const tasks = byOrigin.get(origin) ?? [];
      tasks.push(task);
      byOrigin.set(origin, tasks);
    }
    return [...byOrigin.values()].map((tasks, i) => ({
      kind: "task.heartbeat",
      head: { ...head, corrId: `${head.corrId}.${i}` },
      data: { pid: this.#pid, tasks },
    }));
  }

  #drop(id: string, version: number): void {
    if (this.#held.get(id)?.version === version) this.#held.delete(id);
  }
}

/** Promises whose trace tags this process keeps: the ones it acquired lately. */
const TRACED_PROMISES = 10_000;

/** The W3C trace context tags of a promise (`traceparent`, `tracestate`), as the API and workflows tag them. */
export type TraceTags = Readonly<Record<string, string>>;

/**
 * A traced promise of a run of this process, as the server answered: one
 * a run asked to create (`sent`: its `traceparent`), or one the server
 * sent along unasked (`sent` undefined: a pending promise that a task's
 * acquire or a later answer preloads). `stored` is the `traceparent` the
 * promise carries: `sent` when this request created it, an earlier run's
 * when that run had.
 */
export interface TracedPromise {
  id: string;
  sent: string | undefined;
  stored: string | undefined;
}

/**
 * `network` with heartbeats that name their tasks. SDK 0.11.4 heartbeats
 * with `task.heartbeat {pid, tasks: []}`: the real Resonate server v0.9.8
 * extends no lease for that, and later servers refuse it, so a step longer
 * than the client's `ttl` loses its lease and runs again elsewhere while it
 * still runs. This wrapper sees every request and answer, keeps the tasks
 * this pid holds (`TaskLeases`), and sends each of the SDK's heartbeats as
 * one heartbeat per origin that lists them, or none when it holds nothing;
 * the SDK gets one `200` back either way, or the first failure.
 */
export class HeartbeatingNetwork implements Network {
  readonly leases: TaskLeases;
  readonly #inner: Network;
  /** id → the trace tags of a promise whose task this process created or acquired (none for an untraced one). */
  readonly #traces = new BoundedMap<string, TraceTags>(TRACED_PROMISES);
  /** id → the version at which this process took a traced task. */
  readonly #versions = new BoundedMap<string, number>(TRACED_PROMISES);
  /** Told the root promise of each task this process suspends: its run stopped there. */
  readonly #blocked: ((id: string) => void)[] = [];
  /** Told each traced promise a run asked to create, once the server answered (`TracedPromise`). */
  readonly #tracedPromises: ((created: TracedPromise) => void)[] = [];

  constructor(inner: Network, pid: string) {
    this.#inner = inner;
    this.leases = new TaskLeases(pid);
  }

  get unicast(): string {
    return this.#inner.unicast;
  }

  get anycast(): string {
    return this.#inner.anycast;
  }

  match(target: string): string {
    return this.#inner.match(target);
  }

  init(): Promise<void> {
    return this.#inner.init();
  }

  stop(): Promise<void> {
    return this.#inner.stop();
  }

  recv(callback: (msg: Message) => void): void {
    this.#inner.recv(callback);
  }

  send = (async (req: Request): Promise<Response> => {
    if (req.kind === "task.heartbeat") {
      await Promise.all(this.leases.heartbeats(req.head).map((beat) => this.#inner.send(beat)));
      return {
        kind: "task.heartbeat",
        head: { corrId: req.head.corrId, status: 200, version: req.head.version },
        data: {},
      };
    }
    if (req.kind === "task.suspend") {
      const awaiter = (req.data as { actions?: { data?: { awaiter?: unknown } }[] }).actions?.[0]?.data
        ?.awaiter;
      if (typeof awaiter === "string") for (const listener of this.#blocked) listener(awaiter);
    }
    let res: Response;
    try {
      res = await this.#inner.send(req);
    } catch (error) {
      this.leases.answered(req, undefined);
      throw error;
    }
    this.leases.answered(req, res);
    if ((req.kind === "task.acquire" || req.kind === "task.create") && res.head.status === 200)
      this.#noteTrace(res.data as { promise?: unknown; task?: { version?: unknown } });
    if (this.#tracedPromises.length > 0) {
      if (req.kind === "task.fence") this.#noteCreate(req, res);
      this.#notePreload(res);
    }
    return res;
  }) as Network["send"];

  /**
   * Calls `listener` for each promise a run asks to create with a
   * `traceparent` tag, once it is answered, and for each pending traced
   * promise an answer preloads.
   */
  onTracedPromise(listener: (created: TracedPromise) => void): void {
    this.#tracedPromises.push(listener);
  }

  /** Calls `listener` with a task's root promise id whenever its run stops to wait (`task.suspend`). */
  onBlocked(listener: (id: string) => void): void {
    this.#blocked.push(listener);
  }

  /** The trace tags of promise `id`, if its task came through this process and it carries any. */
  traceOf(id: string): TraceTags | undefined {
    return this.#traces.get(id);
  }

  /**
   * The version at which this process last took traced task `id`: 1 the
   * first time anyone took it, more once it was taken before (a workflow
   * resumed, or a task whose earlier holder died or gave it back).
   */
  takenAt(id: string): number | undefined {
    return this.#versions.get(id);
  }

  /** A fenced `promise.create` (how a run creates its steps' and RPCs' promises), if it was traced and answered 200. */
  #noteCreate(req: Request, res: Response): void {
    const inner = (
      req.data as { action?: { kind?: unknown; data?: { id?: unknown; tags?: Record<string, unknown> } } }
    ).action;
    const sent = inner?.data?.tags?.traceparent;
    if (inner?.kind !== "promise.create" || typeof sent !== "string" || typeof inner.data?.id !== "string")
      return;
    const answer = (
      res.data as {
        action?: { head?: { status?: unknown }; data?: { promise?: { tags?: Record<string, unknown> } } };
      }
    ).action;
    if (res.head.status !== 200 || answer?.head?.status !== 200) return;
    const stored = answer.data?.promise?.tags?.traceparent;
    const created: TracedPromise = {
      id: inner.data.id,
      sent,
      stored: typeof stored === "string" ? stored : undefined,
    };
    for (const listener of this.#tracedPromises) listener(created);
  }

  /** The pending traced promises an answer (an acquire's, a suspend's, a fence's) sends along. */
  #notePreload(res: Response): void {
    const preload = (res.data as { preload?: unknown } | undefined)?.preload;
    if (res.head.status >= 400 || !Array.isArray(preload)) return;
    for (const promise of preload as { id?: unknown; state?: unknown; tags?: Record<string, unknown> }[]) {
      const stored = promise?.tags?.traceparent;
      if (promise?.state !== "pending" || typeof promise.id !== "string" || typeof stored !== "string")
        continue;
      for (const listener of this.#tracedPromises) listener({ id: promise.id, sent: undefined, stored });
    }
  }

  #noteTrace({ promise, task }: { promise?: unknown; task?: { version?: unknown } }): void {
    const { id, tags } = (promise ?? {}) as { id?: unknown; tags?: Record<string, unknown> };
    if (typeof id !== "string" || typeof tags?.traceparent !== "string") return;
    this.#traces.set(
      id,
      typeof tags.tracestate === "string"
        ? { traceparent: tags.traceparent, tracestate: tags.tracestate }
        : { traceparent: tags.traceparent },
    );
    if (typeof task?.version === "number") this.#versions.set(id, task.version);
  }
}

/** What a stopping worker did with the tasks it held. */
export interface HandOff {
  /** Tasks that were still held when the worker stopped taking new ones. */
  heldAtStart: number;
  /** Tasks handed back with `task.release` once the time was up, and how each release was answered (a status, or the error). */
  released: { id: string; version: number; answer: string }[];
}

/** How often a stopping worker looks whether its tasks are done (ms). */
const HAND_OFF_POLL_MS = 20;

/**
 * A worker's stop, between SIGTERM and its exit: `stopReceiving()` closes
 * its message stream (no new task reaches it: the server offers the
 * group's tasks to its other processes), the tasks it holds run on until
 * they finish or suspend, and those still held at `deadline` are released
 * (`task.release`), which makes the server offer each one again at once
 * instead of after its lease runs out. Heartbeats go on meanwhile, so no
 * lease lapses while a step still runs here.
 */
export async function handOffTasks(
  network: HeartbeatingNetwork,
  stopReceiving: () => void,
  deadline: number,
): Promise<HandOff> {
  stopReceiving();
  const heldAtStart = network.leases.held().length;
  while (network.leases.held().length > 0 && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, HAND_OFF_POLL_MS));
  const released = await Promise.all(
    network.leases.held().map(async ({ id, version }) => {
      let answer: string;
      try {
        const res = await network.send({
          kind: "task.release",
          head: { corrId: randomUUID(), version: PROTOCOL_VERSION },
          data: { id, version },
        } as Request);
        answer = String(res.head.status);
      } catch (error) {
        answer = String(error);
      }
      return { id, version, answer };
    }),
  );
  return { heldAtStart, released };
}
