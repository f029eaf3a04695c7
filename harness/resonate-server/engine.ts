import type { Change, EnginePromise, EngineSchedule, EngineTask } from "./engine-types.ts";
import { Engine } from "./engine-types.ts";

/** The engine's own methods that the indexes below replace or wrap. */
interface Internals {
  promises: Map<string, EnginePromise>;
  tasks: Map<string, EngineTask>;
  setPromise(p: EnginePromise): Change;
  setTask(t: EngineTask): Change;
  delTTimeout(id: string): Change;
  setPTimeout(t: { id: string; timeout: number }): Change;
  delPTimeout(id: string): Change;
  setTTimeout(t: { id: string; type: 0 | 1; timeout: number }): Change;
  setSTimeout(t: { id: string; timeout: number }): Change;
  delSTimeout(id: string): Change;
  triggerFulfilled(promiseId: string): Change[];
  preload(promiseId: string): unknown[];
  toPromiseRecord(p: EnginePromise): unknown;
  toTaskRecord(t: EngineTask): unknown;
  toScheduleRecord(s: EngineSchedule): unknown;
}

type Timeout = { id: string; timeout: number; type?: 0 | 1 };

/** Where the engine reads back a promise or task that is no longer held in memory. */
export interface ColdRecords {
  promise(id: string): EnginePromise | undefined;
  task(id: string): EngineTask | undefined;
}

/**
 * The records in memory, in front of the ones that left it: `get` and
 * `has` read a missing id from `load` and keep what they find, so the
 * engine sees every record as if all were held. Iteration and `size` are
 * the resident records only.
 */
class ResidentMap<V> extends Map<string, V> {
  constructor(
    readonly load: (id: string) => V | undefined,
    readonly loaded: (value: V) => void,
  ) {
    super();
  }

  override get(id: string): V | undefined {
    const resident = super.get(id);
    if (resident !== undefined) return resident;
    const value = this.load(id);
    if (value !== undefined) {
      super.set(id, value);
      this.loaded(value);
    }
    return value;
  }

  override has(id: string): boolean {
    return this.get(id) !== undefined;
  }

  /** The record if it is in memory, without reading it back. */
  resident(id: string): V | undefined {
    return super.get(id);
  }
}

/**
 * The SDK's engine with the scans that grow with history replaced by
 * indexes, so a request costs the same after a million promises as after
 * ten: timeouts are kept in maps instead of arrays searched by id, a
 * fulfilled task's callbacks are found through an awaiter index instead of
 * a pass over every promise, and a task's preload through a branch index.
 * Behaviour is the engine's own; only the lookups change.
 *
 * Promises and tasks can also leave memory (`evictBranch`) once they are
 * settled and on disk: a lookup of one reads it back through `cold`.
 */
export class IndexedEngine extends Engine {
  /** Reads back records that left memory; none leave until it is set. */
  cold: ColdRecords | undefined;
  readonly #byBranch = new Map<string, Set<string>>();
  readonly #byAwaiter = new Map<string, Set<string>>();
  readonly #timeouts = {
    p: new Map<string, Timeout>(),
    t: new Map<string, Timeout>(),
    s: new Map<string, Timeout>(),
  };

  constructor() {
    super();
    const self = this as unknown as Internals;
    self.promises = new ResidentMap(
      (id) => this.cold?.promise(id),
      (p) => this.#index(p),
    );
    self.tasks = new ResidentMap(
      (id) => this.cold?.task(id),
      () => {},
    );
    const setPromise = self.setPromise.bind(this);
    const timeouts = this.#timeouts;
    for (const [field, map] of [
      ["pTimeouts", timeouts.p],
      ["tTimeouts", timeouts.t],
      ["sTimeouts", timeouts.s],
    ] as const) {
      Object.defineProperty(this, field, {
        get: () => [...map.values()],
        set: (list: Timeout[]) => {
          map.clear();
          for (const t of list) map.set(t.id, { ...t });
        },
        configurable: true,
      });
    }
    self.setPromise = (p) => {
      this.#index(p);
      return setPromise(p);
    };
    self.setPTimeout = (t) => {
      timeouts.p.set(t.id, { ...t });
      return { kind: "ptimeout.set", timeout: { id: t.id, timeout: t.timeout } };
    };
    self.delPTimeout = (id) => {
      timeouts.p.delete(id);
      return { kind: "ptimeout.del", id };
    };
    self.setTTimeout = (t) => {
      timeouts.t.set(t.id, { ...t });
      return { kind: "ttimeout.set", timeout: { id: t.id, type: t.type, timeout: t.timeout } };
    };
    self.delTTimeout = (id) => {
      timeouts.t.delete(id);
      return { kind: "ttimeout.del", id };
    };
    self.setSTimeout = (t) => {
      timeouts.s.set(t.id, { ...t });
      return { kind: "stimeout.set", timeout: { id: t.id, timeout: t.timeout } };
    };
    self.delSTimeout = (id) => {
      timeouts.s.delete(id);
      return { kind: "stimeout.del", id };
    };
    self.triggerFulfilled = (promiseId) => {
      const task = self.tasks.get(promiseId);
      if (!task || task.state === "fulfilled") return [];
      const changes: Change[] = [];
      changes.push(
        self.setTask({ ...task, state: "fulfilled", pid: undefined, ttl: undefined, resumes: new Set() }),
      );
      changes.push(self.delTTimeout(promiseId));
      // Remove this task from the callbacks of every promise it awaited.
      for (const awaited of this.#byAwaiter.get(promiseId) ?? []) {
        const promise = self.promises.get(awaited);
        if (promise?.callbacks.delete(promiseId)) changes.push(self.setPromise(promise));
      }
      this.#byAwaiter.delete(promiseId);
      return changes;
    };
    // The engine finds a schedule's next run by a pass over every schedule's timeout.
    self.toScheduleRecord = (s) => {
      const record: Record<string, unknown> = {
        id: s.id,
        cron: s.cron,
        promiseId: s.promiseId,
        promiseTimeout: s.promiseTimeout,
        promiseParam: s.promiseParam,
        promiseTags: s.promiseTags,
        createdAt: s.createdAt,
        nextRunAt: timeouts.s.get(s.id)?.timeout,
      };
      if (s.lastRunAt != null) record.lastRunAt = s.lastRunAt;
      return record;
    };
    self.preload = (promiseId) => {
      const branch = self.promises.get(promiseId)?.tags["resonate:branch"];
      if (!branch) return [];
      const results: unknown[] = [];
      for (const id of this.#byBranch.get(branch) ?? []) {
        const p = self.promises.get(id);
        if (p && id !== promiseId) results.push(self.toPromiseRecord(p));
      }
      return results;
    };
  }

  /** A promise as the protocol's answers show it. */
  promiseRecord(p: EnginePromise): unknown {
    return (this as unknown as Internals).toPromiseRecord(p);
  }

  /** A task as the protocol's answers show it. */
  taskRecord(t: EngineTask): unknown {
    return (this as unknown as Internals).toTaskRecord(t);
  }

  /** A schedule as the protocol's answers show it. */
  scheduleRecord(s: EngineSchedule): unknown {
    return (this as unknown as Internals).toScheduleRecord(s);
  }

  /** The promises held in memory, without reading any back. */
  residentPromises(): IterableIterator<EnginePromise> {
    return (this as unknown as Internals).promises.values();
  }

  /** The tasks held in memory, without reading any back. */
  residentTasks(): IterableIterator<EngineTask> {
    return (this as unknown as Internals).tasks.values();
  }

  /** Whether the promise with this id is held in memory (a lookup that reads nothing back). */
  isResidentPromise(id: string): boolean {
    return (this as unknown as { promises: ResidentMap<EnginePromise> }).promises.resident(id) !== undefined;
  }

  /** Whether the task with this id is held in memory (a lookup that reads nothing back). */
  isResidentTask(id: string): boolean {
    return (this as unknown as { tasks: ResidentMap<EngineTask> }).tasks.resident(id) !== undefined;
  }

  /** Promises and tasks held in memory. */
  get resident(): { promises: number; tasks: number } {
    const self = this as unknown as Internals;
    return { promises: self.promises.size, tasks: self.tasks.size };
  }

  /**
   * Drops the promises of `branch` (a root and everything created under it)
   * and their tasks from memory, if every one is done with: settled, with no
   * callback or listener left, no timeout, and its task (if any) fulfilled;
   * and `onDisk` holds for each. A branch goes as a whole, so a task that
   * later runs in a branch still gets every one of its promises preloaded.
   * Returns the ids dropped, or why nothing was: a promise is still `busy`,
   * or one's last change is not on disk yet (`later`).
   */
  evictBranch(branch: string, onDisk: (id: string) => boolean): string[] | "busy" | "later" {
    const self = this as unknown as Internals & {
      promises: ResidentMap<EnginePromise>;
      tasks: ResidentMap<EngineTask>;
    };
    const ids = this.#byBranch.get(branch) ?? (self.promises.resident(branch) ? [branch] : []);
    for (const id of ids) {
      const p = self.promises.resident(id);
      if (!p) continue;
      if (p.state === "pending" || p.callbacks.size > 0 || p.listeners.size > 0) return "busy";
      if (this.#timeouts.p.has(id) || this.#timeouts.t.has(id)) return "busy";
      const task = self.tasks.resident(id);
      if (task && task.state !== "fulfilled") return "busy";
    }
    for (const id of ids) if (!onDisk(id)) return "later";
    const dropped = [...ids];
    for (const id of dropped) {
      self.promises.delete(id);
      self.tasks.delete(id);
      this.#byAwaiter.delete(id);
    }
    this.#byBranch.delete(branch);
    return dropped;
  }

  /**
   * The tasks whose timeout is due at `now`, with its type: 1 a lease that
   * expires, 0 a pending task's retry. For the metrics of what a tick re-sends.
   */
  dueTaskTimeouts(now: number): Map<string, 0 | 1> {
    const due = new Map<string, 0 | 1>();
    for (const t of this.#timeouts.t.values()) if (now >= t.timeout) due.set(t.id, t.type ?? 0);
    return due;
  }

  /** The timeout of a promise ("p"), task ("t") or schedule ("s"), if one is set. */
  timeoutOf(kind: "p" | "t" | "s", id: string): Timeout | undefined {
    return this.#timeouts[kind].get(id);
  }

  /** Rebuilds the indexes after promises were loaded straight into the map. */
  reindex(): void {
    this.#byBranch.clear();
    this.#byAwaiter.clear();
    for (const p of this.promises.values()) this.#index(p);
  }

  #index(p: EnginePromise): void {
    const branch = p.tags["resonate:branch"];
    if (branch) {
      const ids = this.#byBranch.get(branch) ?? new Set<string>();
      ids.add(p.id);
      this.#byBranch.set(branch, ids);
    }
    for (const awaiter of p.callbacks) {
      const awaited = this.#byAwaiter.get(awaiter) ?? new Set<string>();
      awaited.add(p.id);
      this.#byAwaiter.set(awaiter, awaited);
    }
  }
}
