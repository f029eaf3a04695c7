import type { Change, EnginePromise, EngineTask } from "./engine-types.ts";
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
}

type Timeout = { id: string; timeout: number; type?: 0 | 1 };

/**
 * The SDK's engine with the scans that grow with history replaced by
 * indexes, so a request costs the same after a million promises as after
 * ten: timeouts are kept in maps instead of arrays searched by id, a
 * fulfilled task's callbacks are found through an awaiter index instead of
 * a pass over every promise, and a task's preload through a branch index.
 * Behaviour is the engine's own; only the lookups change.
 */
export class IndexedEngine extends Engine {
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
