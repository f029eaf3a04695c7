import { Database } from "bun:sqlite";
import type { IndexedEngine } from "./engine.ts";
import type { Change, EnginePromise, EngineSchedule, EngineTask, Message } from "./engine-types.ts";
import { readSegments } from "./log.ts";
import { type PromiseRow, type StoreOp, TABLES, type Table, type TaskRow } from "./store-ops.ts";

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

/** The outbox entry of a message to `address`. */
export function outboxEntry(address: string, message: Message): OutboxEntry {
  return { key: outboxKey(address, message), address, message };
}

/**
 * The tables' layout. Promises, tasks and schedules are rowid tables: their
 * records run to about 1 KiB, and a WITHOUT ROWID table keeps whole rows in
 * its interior pages too (three or four to a page), which made its B-tree
 * deep and had every fold rewrite most of it. A rowid table keeps new rows
 * together at its end and only the small `id` index takes random writes.
 *
 * Version 2 adds an index of promises and of tasks by state and id, for
 * searches by state (`search.ts`): a page of 100 of a state one promise in
 * a thousand has took 118 ms by a walk of the id index over 100 000
 * promises, and takes ~1 ms by this one (`bun harness/resonate-server/search-bench.ts`).
 */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS promises (id TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (id TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS schedules (id TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS promise_timeouts (id TEXT PRIMARY KEY, timeout INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS task_timeouts (id TEXT PRIMARY KEY, type INTEGER NOT NULL, timeout INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS schedule_timeouts (id TEXT PRIMARY KEY, timeout INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (key TEXT PRIMARY KEY, address TEXT NOT NULL, message TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS promises_state ON promises (json_extract(record, '$.state'), id);
CREATE INDEX IF NOT EXISTS tasks_state ON tasks (json_extract(record, '$.state'), id);
`;

/** The layout version `SCHEMA` describes, kept in the file's `user_version`. */
export const SCHEMA_VERSION = 2;

/** The tables of JSON records that version 0 kept WITHOUT ROWID. */
const RECORD_TABLES = ["promises", "tasks", "schedules"] as const;

/** Opens the SQLite file, creating its tables, with the settings every connection uses. */
export function openTables(path: string): Database {
  const db = new Database(path, { create: true, strict: true });
  db.exec("PRAGMA journal_mode = WAL;");
  db.exec("PRAGMA synchronous = FULL;");
  db.exec("PRAGMA busy_timeout = 5000;");
  try {
    migrate(db);
  } catch (error) {
    db.close();
    throw error;
  }
  return db;
}

/**
 * Creates the tables of a new file and brings a file written by an earlier
 * version to `SCHEMA_VERSION`, in one transaction: a crash part way leaves
 * the file as it was. A file from a later version is refused, not read.
 */
function migrate(db: Database): void {
  db.exec("BEGIN IMMEDIATE");
  try {
    const version = db.query<{ user_version: number }, []>("PRAGMA user_version").get()?.user_version ?? 0;
    if (version > SCHEMA_VERSION)
      throw new Error(
        `${db.filename}: the state file has layout version ${version}; this server reads up to ${SCHEMA_VERSION}`,
      );
    if (version < SCHEMA_VERSION) {
      // Version 0 kept the record tables WITHOUT ROWID: they are copied into rowid tables. A file of
      // version 1 only lacks the state indexes, which the schema's IF NOT EXISTS adds.
      const old = version < 1 ? RECORD_TABLES.filter((table) => hasTable(db, table)) : [];
      for (const table of old) db.exec(`ALTER TABLE ${table} RENAME TO ${table}_v0`);
      db.exec(SCHEMA);
      for (const table of old) {
        db.exec(`INSERT INTO ${table} (id, record) SELECT id, record FROM ${table}_v0`);
        db.exec(`DROP TABLE ${table}_v0`);
      }
      db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
    }
    db.exec("COMMIT");
  } catch (error) {
    if (db.inTransaction) db.exec("ROLLBACK");
    throw error;
  }
}

function hasTable(db: Database, name: string): boolean {
  return (
    db
      .query<{ n: number }, [string]>(
        "SELECT count(*) AS n FROM sqlite_schema WHERE type = 'table' AND name = ?",
      )
      .get(name)?.n === 1
  );
}

/** What a restart finds on disk besides the engine's state. */
export interface Recovered {
  /** Messages no process had received. */
  outbox: OutboxEntry[];
  /** The segment files, all free: everything they held is in the tables now. */
  segmentFiles: string[];
  /** The sequence number for the next segment, above every one any file holds. */
  nextSeq: number;
}

/**
 * Brings the state file at `path` up to date and fills an empty engine from
 * it: the commits of segments not yet folded are folded into the tables
 * (oldest segment first), then every table is read into the engine.
 */
export function recover(path: string, engine: IndexedEngine): Recovered {
  const db = openTables(path);
  try {
    const tables = new Tables(db);
    const foldedThrough = tables.foldedThrough();
    const segments = readSegments(path);
    const live = segments
      .filter((s) => s.commits.length > 0 && s.seq > foldedThrough)
      .sort((a, b) => a.seq - b.seq);
    const last = live.at(-1);
    if (last)
      tables.fold(
        live.flatMap((s) => s.commits),
        last.seq,
      );
    loadTables(db, engine);
    return {
      outbox: db
        .query<{ key: string; address: string; message: string }, []>(
          "SELECT key, address, message FROM outbox",
        )
        .all()
        .map((row) => ({ key: row.key, address: row.address, message: JSON.parse(row.message) as Message })),
      segmentFiles: segments.map((s) => s.path),
      nextSeq: Math.max(foldedThrough, ...segments.map((s) => s.seq)) + 1,
    };
  } finally {
    db.close();
  }
}

/** A row of a search: its id, to page on, and its JSON record. */
interface SearchRow {
  id: string;
  record: string;
}

function promiseFrom(record: string): EnginePromise {
  const row = JSON.parse(record) as PromiseRow;
  return { ...row, callbacks: new Set(row.callbacks), listeners: new Set(row.listeners) };
}

function taskFrom(record: string): EngineTask {
  const row = JSON.parse(record) as TaskRow;
  return { ...row, resumes: new Set(row.resumes) };
}

function loadTables(db: Database, engine: IndexedEngine): void {
  for (const { record } of db.query<{ record: string }, []>("SELECT record FROM promises").all()) {
    const p = promiseFrom(record);
    engine.promises.set(p.id, p);
  }
  for (const { record } of db.query<{ record: string }, []>("SELECT record FROM tasks").all()) {
    const t = taskFrom(record);
    engine.tasks.set(t.id, t);
  }
  for (const { record } of db.query<{ record: string }, []>("SELECT record FROM schedules").all()) {
    const row = JSON.parse(record) as EngineSchedule;
    engine.schedules.set(row.id, row);
  }
  engine.pTimeouts = db
    .query<{ id: string; timeout: number }, []>("SELECT id, timeout FROM promise_timeouts")
    .all();
  engine.tTimeouts = db
    .query<{ id: string; type: 0 | 1; timeout: number }, []>("SELECT id, type, timeout FROM task_timeouts")
    .all();
  engine.sTimeouts = db
    .query<{ id: string; timeout: number }, []>("SELECT id, timeout FROM schedule_timeouts")
    .all();
  engine.reindex();
}

/**
 * Promises and tasks read back from the tables, for the engine's records
 * that left memory. A connection of its own on the server's thread, which
 * only reads: the folding thread stays the only writer, and in WAL mode a
 * read sees the last fold that committed and never waits for one under way.
 */
export class ColdStore {
  readonly #db: Database;
  readonly #promise: ReturnType<Database["prepare"]>;
  readonly #task: ReturnType<Database["prepare"]>;
  readonly #searchPromises: Record<"any" | "state", ReturnType<Database["prepare"]>>;
  readonly #searchTasks: Record<"any" | "state", ReturnType<Database["prepare"]>>;

  constructor(path: string) {
    this.#db = new Database(path, { strict: true });
    this.#db.exec("PRAGMA busy_timeout = 5000;");
    this.#promise = this.#db.prepare("SELECT record FROM promises WHERE id = ?");
    this.#task = this.#db.prepare("SELECT record FROM tasks WHERE id = ?");
    // The real server's filters (src/persistence/persistence_sqlite.rs): a state equal to the one
    // asked for, and no asked-for tag (key and value) missing from the record's tags. One statement
    // with a state and one without, so each walks its index (by state and id, or by id) from the cursor.
    const tagged = `(?3 IS NULL OR NOT EXISTS (
      SELECT key, value FROM json_each(?3) EXCEPT SELECT key, value FROM json_each(record, '$.tags')))`;
    this.#searchPromises = {
      any: this.#db.prepare(
        `SELECT id, record FROM promises WHERE id > ?1 AND ?2 IS NULL AND ${tagged} ORDER BY id LIMIT ?4`,
      ),
      state: this.#db.prepare(
        `SELECT id, record FROM promises INDEXED BY promises_state
         WHERE json_extract(record, '$.state') = ?2 AND id > ?1 AND ${tagged} ORDER BY id LIMIT ?4`,
      ),
    };
    this.#searchTasks = {
      any: this.#db.prepare(`SELECT id, record FROM tasks WHERE id > ?1 AND ?2 IS NULL ORDER BY id LIMIT ?3`),
      state: this.#db.prepare(
        `SELECT id, record FROM tasks INDEXED BY tasks_state
         WHERE json_extract(record, '$.state') = ?2 AND id > ?1 ORDER BY id LIMIT ?3`,
      ),
    };
  }

  promise(id: string): EnginePromise | undefined {
    const row = this.#promise.get(id) as { record: string } | null;
    return row ? promiseFrom(row.record) : undefined;
  }

  /**
   * Up to `count` promises with an id after `after` (in SQLite's byte order
   * of ids, as the real server's `ORDER BY id`), in that order, with `state`
   * and every tag of `tags` (a JSON object) when given, leaving out those
   * `skip` names (held in memory, whose rows may be stale). The id index is
   * walked from `after`, so a page costs what it reads, not the table.
   */
  searchPromises(
    after: string,
    state: string | undefined,
    tags: string | undefined,
    count: number,
    skip: (id: string) => boolean,
  ): EnginePromise[] {
    return this.#search(
      (from, want) =>
        this.#searchPromises[state === undefined ? "any" : "state"].all(
          from,
          state ?? null,
          tags ?? null,
          want,
        ) as SearchRow[],
      after,
      count,
      skip,
      promiseFrom,
    );
  }

  /** Up to `count` tasks after `after` in id order, with `state` when given; as `searchPromises`. */
  searchTasks(
    after: string,
    state: string | undefined,
    count: number,
    skip: (id: string) => boolean,
  ): EngineTask[] {
    return this.#search(
      (from, want) =>
        this.#searchTasks[state === undefined ? "any" : "state"].all(
          from,
          state ?? null,
          want,
        ) as SearchRow[],
      after,
      count,
      skip,
      taskFrom,
    );
  }

  #search<T>(
    rows: (from: string, want: number) => SearchRow[],
    after: string,
    count: number,
    skip: (id: string) => boolean,
    parse: (record: string) => T,
  ): T[] {
    const found: T[] = [];
    let from = after;
    while (found.length < count) {
      const want = count - found.length;
      const batch = rows(from, want);
      for (const row of batch) if (!skip(row.id)) found.push(parse(row.record));
      const last = batch.at(-1);
      if (batch.length < want || !last) break;
      from = last.id;
    }
    return found;
  }

  task(id: string): EngineTask | undefined {
    const row = this.#task.get(id) as { record: string } | null;
    return row ? taskFrom(row.record) : undefined;
  }

  /** Every promise and task in the tables. */
  all(): { promises: EnginePromise[]; tasks: EngineTask[] } {
    const rows = (table: string) =>
      this.#db.query<{ record: string }, []>(`SELECT record FROM ${table}`).all();
    return {
      promises: rows("promises").map((row) => promiseFrom(row.record)),
      tasks: rows("tasks").map((row) => taskFrom(row.record)),
    };
  }

  close(): void {
    this.#db.close();
  }
}

/**
 * The writes that make the state file match the engine for everything
 * `changes` touched. The engine's change list names what a request touched
 * but does not carry a promise's callbacks and listeners, so the engine's
 * whole current record is written for every id a change names: what is on
 * disk is exactly what the engine holds in memory. Then the messages to
 * deliver are added and the ones that reached a process are removed.
 */
export function commitOps(
  engine: IndexedEngine,
  changes: Change[],
  outbox: OutboxEntry[],
  delivered: Iterable<string>,
): StoreOp[] {
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
  const ops: StoreOp[] = [];
  for (const id of promises) {
    const p = engine.promises.get(id);
    ops.push(p ? ["put", "promises", id, promiseRow(p)] : ["del", "promises", id]);
  }
  for (const id of tasks) {
    const t = engine.tasks.get(id);
    ops.push(t ? ["put", "tasks", id, { ...t, resumes: [...t.resumes] }] : ["del", "tasks", id]);
  }
  for (const id of schedules) {
    const s = engine.schedules.get(id);
    ops.push(s ? ["put", "schedules", id, s] : ["del", "schedules", id]);
  }
  for (const id of promiseTimeouts) {
    const t = engine.timeoutOf("p", id);
    ops.push(t ? ["ptimeout", id, t.timeout] : ["del", "promise_timeouts", id]);
  }
  for (const id of taskTimeouts) {
    const t = engine.timeoutOf("t", id);
    ops.push(t ? ["ttimeout", id, t.type ?? 0, t.timeout] : ["del", "task_timeouts", id]);
  }
  for (const id of scheduleTimeouts) {
    const t = engine.timeoutOf("s", id);
    ops.push(t ? ["stimeout", id, t.timeout] : ["del", "schedule_timeouts", id]);
  }
  for (const key of delivered) ops.push(["del", "outbox", key]);
  for (const entry of outbox) {
    ops.push(["outbox", entry.key, entry.address, entry.message]);
  }
  return ops;
}

/** The row a write sets or removes, as `table \0 id`. */
function rowKey(op: Exclude<StoreOp, ["reset"]>): string {
  switch (op[0]) {
    case "put":
    case "del":
      return `${op[1]}\0${op[2]}`;
    case "ptimeout":
      return `promise_timeouts\0${op[1]}`;
    case "ttimeout":
      return `task_timeouts\0${op[1]}`;
    case "stimeout":
      return `schedule_timeouts\0${op[1]}`;
    case "outbox":
      return `outbox\0${op[1]}`;
  }
}

/**
 * The net effect of a run of commits: the last write of each row, after an
 * empty-everything if one of them was a reset. Writing these is the same as
 * writing every commit in order, since each write sets a whole row.
 */
export class LastWrites {
  #reset = false;
  readonly #last = new Map<string, StoreOp>();

  add(ops: StoreOp[]): void {
    for (const op of ops) {
      if (op[0] === "reset") {
        this.#reset = true;
        this.#last.clear();
      } else {
        this.#last.set(rowKey(op), op);
      }
    }
  }

  ops(): StoreOp[] {
    return this.#reset ? [["reset"], ...this.#last.values()] : [...this.#last.values()];
  }
}

/** The SQLite tables: commits from the log are folded into them, the last write of each row winning. */
export class Tables {
  readonly #db: Database;
  readonly #put: Record<"promises" | "tasks" | "schedules", ReturnType<Database["prepare"]>>;
  readonly #del: Record<Table, ReturnType<Database["prepare"]>>;
  readonly #putPromiseTimeout: ReturnType<Database["prepare"]>;
  readonly #putTaskTimeout: ReturnType<Database["prepare"]>;
  readonly #putScheduleTimeout: ReturnType<Database["prepare"]>;
  readonly #putOutbox: ReturnType<Database["prepare"]>;
  readonly #setFolded: ReturnType<Database["prepare"]>;
  readonly #transaction: (ops: Iterable<StoreOp>, through: number | undefined) => void;

  constructor(db: Database) {
    this.#db = db;
    const put = (table: string) =>
      db.prepare(
        `INSERT INTO ${table} (id, record) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET record = excluded.record`,
      );
    this.#put = { promises: put("promises"), tasks: put("tasks"), schedules: put("schedules") };
    this.#del = Object.fromEntries(
      TABLES.map((table) => [
        table,
        db.prepare(`DELETE FROM ${table} WHERE ${table === "outbox" ? "key" : "id"} = ?`),
      ]),
    ) as Record<Table, ReturnType<Database["prepare"]>>;
    this.#putPromiseTimeout = db.prepare(
      "INSERT INTO promise_timeouts (id, timeout) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET timeout = excluded.timeout",
    );
    this.#putTaskTimeout = db.prepare(
      "INSERT INTO task_timeouts (id, type, timeout) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET type = excluded.type, timeout = excluded.timeout",
    );
    this.#putScheduleTimeout = db.prepare(
      "INSERT INTO schedule_timeouts (id, timeout) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET timeout = excluded.timeout",
    );
    this.#putOutbox = db.prepare(
      "INSERT INTO outbox (key, address, message) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET address = excluded.address, message = excluded.message",
    );
    this.#setFolded = db.prepare(
      "INSERT INTO meta (key, value) VALUES ('folded_through', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    );
    this.#transaction = db.transaction((ops: Iterable<StoreOp>, through: number | undefined) =>
      this.#writeAll(ops, through),
    );
  }

  /** The sequence number of the last segment folded in (0 when none was). */
  foldedThrough(): number {
    return (
      this.#db.query<{ value: number }, []>("SELECT value FROM meta WHERE key = 'folded_through'").get()
        ?.value ?? 0
    );
  }

  /**
   * Writes `ops` in one transaction; with `through`, also records that
   * segments up to that sequence number are folded. Inside a transaction the
   * caller opened (a fold written in slices), the writes join it and its
   * rollback undoes them: a savepoint of their own would copy every page
   * they touch to a journal file first.
   */
  write(ops: Iterable<StoreOp>, through?: number): void {
    if (this.#db.inTransaction) this.#writeAll(ops, through);
    else this.#transaction(ops, through);
  }

  #writeAll(ops: Iterable<StoreOp>, through: number | undefined): void {
    for (const op of ops) this.#run(op);
    if (through !== undefined) this.#setFolded.run(through);
  }

  /** Folds `commits` (in commit order) into the tables in one transaction, each row written once. */
  fold(commits: Iterable<StoreOp[]>, through: number): void {
    const writes = new LastWrites();
    for (const ops of commits) writes.add(ops);
    this.write(writes.ops(), through);
  }

  #run(op: StoreOp): void {
    switch (op[0]) {
      case "put":
        this.#put[op[1]].run(op[2], JSON.stringify(op[3]));
        break;
      case "del":
        this.#del[op[1]].run(op[2]);
        break;
      case "ptimeout":
        this.#putPromiseTimeout.run(op[1], op[2]);
        break;
      case "ttimeout":
        this.#putTaskTimeout.run(op[1], op[2], op[3]);
        break;
      case "stimeout":
        this.#putScheduleTimeout.run(op[1], op[2]);
        break;
      case "outbox":
        this.#putOutbox.run(op[1], op[2], JSON.stringify(op[3]));
        break;
      case "reset":
        for (const table of TABLES) this.#db.exec(`DELETE FROM ${table}`);
        break;
    }
  }
}

function promiseRow(p: EnginePromise): PromiseRow {
  return { ...p, callbacks: [...p.callbacks], listeners: [...p.listeners] };
}
