import { Database } from "bun:sqlite";
import type { IndexedEngine } from "./engine.ts";
import type { Change, EnginePromise, EngineSchedule, EngineTask, Message } from "./engine-types.ts";

/** A message the engine produced that no process has received yet. */
export interface OutboxEntry {
  /** One entry per task for `execute` (a newer one replaces the older), one per promise and address for `unblock`. */
  key: string;
  address: string;
  message: Message;
}

export function outboxKey(address: string, message: Message): string {
  return message.kind === "execute"
    ? `execute:${message.data.task.id}`
    : `unblock:${message.data.promise.id}:${address}`;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS promises (id TEXT PRIMARY KEY, record TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tasks (id TEXT PRIMARY KEY, record TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS schedules (id TEXT PRIMARY KEY, record TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS promise_timeouts (id TEXT PRIMARY KEY, timeout INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS task_timeouts (id TEXT PRIMARY KEY, type INTEGER NOT NULL, timeout INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS schedule_timeouts (id TEXT PRIMARY KEY, timeout INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (key TEXT PRIMARY KEY, address TEXT NOT NULL, message TEXT NOT NULL) WITHOUT ROWID;
`;

interface PromiseRow {
  id: string;
  state: EnginePromise["state"];
  param: EnginePromise["param"];
  value: EnginePromise["value"];
  tags: Record<string, string>;
  timeoutAt: number;
  createdAt: number;
  settledAt: number | null;
  callbacks: string[];
  listeners: string[];
}

interface TaskRow {
  id: string;
  state: EngineTask["state"];
  version: number;
  pid?: string;
  ttl?: number;
  resumes: string[];
}

/**
 * The server's durable state in one SQLite file (WAL, synchronous=FULL).
 *
 * The engine's change list names what a request touched but does not carry
 * a promise's callbacks and listeners, so `commit` writes the engine's whole
 * current record for every id a change names: what is on disk is exactly
 * what the engine holds in memory.
 */
export class Store {
  readonly #db: Database;
  readonly #put: Record<"promises" | "tasks" | "schedules", ReturnType<Database["prepare"]>>;
  readonly #del: Record<
    | "promises"
    | "tasks"
    | "schedules"
    | "promise_timeouts"
    | "task_timeouts"
    | "schedule_timeouts"
    | "outbox",
    ReturnType<Database["prepare"]>
  >;
  readonly #putPromiseTimeout: ReturnType<Database["prepare"]>;
  readonly #putTaskTimeout: ReturnType<Database["prepare"]>;
  readonly #putScheduleTimeout: ReturnType<Database["prepare"]>;
  readonly #putOutbox: ReturnType<Database["prepare"]>;

  constructor(path: string) {
    this.#db = new Database(path, { create: true, strict: true });
    this.#db.exec("PRAGMA journal_mode = WAL;");
    this.#db.exec("PRAGMA synchronous = FULL;");
    this.#db.exec("PRAGMA busy_timeout = 5000;");
    this.#db.exec(SCHEMA);
    const put = (table: string) =>
      this.#db.prepare(
        `INSERT INTO ${table} (id, record) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET record = excluded.record`,
      );
    this.#put = { promises: put("promises"), tasks: put("tasks"), schedules: put("schedules") };
    const del = (table: string, key = "id") => this.#db.prepare(`DELETE FROM ${table} WHERE ${key} = ?`);
    this.#del = {
      promises: del("promises"),
      tasks: del("tasks"),
      schedules: del("schedules"),
      promise_timeouts: del("promise_timeouts"),
      task_timeouts: del("task_timeouts"),
      schedule_timeouts: del("schedule_timeouts"),
      outbox: del("outbox", "key"),
    };
    this.#putPromiseTimeout = this.#db.prepare(
      "INSERT INTO promise_timeouts (id, timeout) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET timeout = excluded.timeout",
    );
    this.#putTaskTimeout = this.#db.prepare(
      "INSERT INTO task_timeouts (id, type, timeout) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET type = excluded.type, timeout = excluded.timeout",
    );
    this.#putScheduleTimeout = this.#db.prepare(
      "INSERT INTO schedule_timeouts (id, timeout) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET timeout = excluded.timeout",
    );
    this.#putOutbox = this.#db.prepare(
      "INSERT INTO outbox (key, address, message) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET address = excluded.address, message = excluded.message",
    );
  }

  /** Fills an empty engine with everything on disk and returns the undelivered messages. */
  load(engine: IndexedEngine): OutboxEntry[] {
    for (const { record } of this.#db.query<{ record: string }, []>("SELECT record FROM promises").all()) {
      const row = JSON.parse(record) as PromiseRow;
      engine.promises.set(row.id, {
        ...row,
        callbacks: new Set(row.callbacks),
        listeners: new Set(row.listeners),
      });
    }
    for (const { record } of this.#db.query<{ record: string }, []>("SELECT record FROM tasks").all()) {
      const row = JSON.parse(record) as TaskRow;
      engine.tasks.set(row.id, { ...row, resumes: new Set(row.resumes) });
    }
    for (const { record } of this.#db.query<{ record: string }, []>("SELECT record FROM schedules").all()) {
      const row = JSON.parse(record) as EngineSchedule;
      engine.schedules.set(row.id, row);
    }
    engine.pTimeouts = this.#db
      .query<{ id: string; timeout: number }, []>("SELECT id, timeout FROM promise_timeouts")
      .all();
    engine.tTimeouts = this.#db
      .query<{ id: string; type: 0 | 1; timeout: number }, []>("SELECT id, type, timeout FROM task_timeouts")
      .all();
    engine.sTimeouts = this.#db
      .query<{ id: string; timeout: number }, []>("SELECT id, timeout FROM schedule_timeouts")
      .all();
    return this.#db
      .query<{ key: string; address: string; message: string }, []>(
        "SELECT key, address, message FROM outbox",
      )
      .all()
      .map((row) => ({ key: row.key, address: row.address, message: JSON.parse(row.message) as Message }));
  }

  /**
   * Writes, in one transaction, the engine's current record for everything
   * `changes` touched, and the messages to deliver. Returns once the
   * transaction is committed (fsynced to the WAL).
   */
  commit(engine: IndexedEngine, changes: Change[], outbox: OutboxEntry[]): void {
    if (changes.length === 0 && outbox.length === 0) return;
    const promises = new Set<string>();
    const tasks = new Set<string>();
    const schedules = new Set<string>();
    const promiseTimeouts = new Set<string>();
    const taskTimeouts = new Set<string>();
    const scheduleTimeouts = new Set<string>();
    for (const change of changes) {
      switch (change.kind) {
        case "promise.set":
          promises.add(change.promise.id);
          break;
        case "task.set":
          tasks.add(change.task.id);
          break;
        case "schedule.set":
          schedules.add(change.schedule.id);
          break;
        case "schedule.del":
          schedules.add(change.id);
          break;
        case "ptimeout.set":
          promiseTimeouts.add(change.timeout.id);
          break;
        case "ptimeout.del":
          promiseTimeouts.add(change.id);
          break;
        case "ttimeout.set":
          taskTimeouts.add(change.timeout.id);
          break;
        case "ttimeout.del":
          taskTimeouts.add(change.id);
          break;
        case "stimeout.set":
          scheduleTimeouts.add(change.timeout.id);
          break;
        case "stimeout.del":
          scheduleTimeouts.add(change.id);
          break;
        case "message.send":
          break;
      }
    }
    this.#db.transaction(() => {
      for (const id of promises) {
        const p = engine.promises.get(id);
        if (p) this.#put.promises.run(id, JSON.stringify(promiseRow(p)));
        else this.#del.promises.run(id);
      }
      for (const id of tasks) {
        const t = engine.tasks.get(id);
        if (t) this.#put.tasks.run(id, JSON.stringify({ ...t, resumes: [...t.resumes] } satisfies TaskRow));
        else this.#del.tasks.run(id);
      }
      for (const id of schedules) {
        const s = engine.schedules.get(id);
        if (s) this.#put.schedules.run(id, JSON.stringify(s));
        else this.#del.schedules.run(id);
      }
      for (const id of promiseTimeouts) {
        const t = engine.timeoutOf("p", id);
        if (t) this.#putPromiseTimeout.run(id, t.timeout);
        else this.#del.promise_timeouts.run(id);
      }
      for (const id of taskTimeouts) {
        const t = engine.timeoutOf("t", id);
        if (t) this.#putTaskTimeout.run(id, t.type ?? 0, t.timeout);
        else this.#del.task_timeouts.run(id);
      }
      for (const id of scheduleTimeouts) {
        const t = engine.timeoutOf("s", id);
        if (t) this.#putScheduleTimeout.run(id, t.timeout);
        else this.#del.schedule_timeouts.run(id);
      }
      for (const entry of outbox) {
        this.#putOutbox.run(entry.key, entry.address, JSON.stringify(entry.message));
      }
    })();
  }

  /** Forgets messages that reached a process. */
  delivered(keys: string[]): void {
    if (keys.length === 0) return;
    this.#db.transaction(() => {
      for (const key of keys) this.#del.outbox.run(key);
    })();
  }

  /** Empties every table (the protocol's `debug.reset`). */
  reset(): void {
    this.#db.transaction(() => {
      for (const table of Object.keys(this.#del)) this.#db.exec(`DELETE FROM ${table}`);
    })();
  }

  close(): void {
    this.#db.close();
  }
}

function promiseRow(p: EnginePromise): PromiseRow {
  return { ...p, callbacks: [...p.callbacks], listeners: [...p.listeners] };
}
