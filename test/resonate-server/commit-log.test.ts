import { Database } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { waitFor } from "../../harness/index.ts";
import { IndexedEngine } from "../../harness/resonate-server/engine.ts";
import type { EngineSchedule } from "../../harness/resonate-server/engine-types.ts";
import {
  CommitLog,
  decodeSegment,
  encodeRecord,
  type FolderReply,
  type FolderRequest,
  RECORD_HEADER_BYTES,
  SYNCHRONOUS_MODES,
  segmentFiles,
} from "../../harness/resonate-server/log.ts";
import { openTables, recover, SCHEMA_VERSION, Tables } from "../../harness/resonate-server/store.ts";
import type { StoreOp } from "../../harness/resonate-server/store-ops.ts";
import { tempDbPaths } from "../support/temp.ts";

const dbPath = tempDbPaths("commit-log-");

const task = (id: string, version: number): StoreOp => [
  "put",
  "tasks",
  id,
  { id, state: "pending", version, resumes: [] },
];

function promise(id: string, state: "pending" | "resolved" = "pending"): StoreOp {
  return [
    "put",
    "promises",
    id,
    {
      id,
      state,
      param: { headers: {}, data: "" },
      value: { headers: {}, data: "" },
      tags: {},
      timeoutAt: 4_000_000_000_000,
      createdAt: 1,
      settledAt: state === "pending" ? null : 2,
      callbacks: [],
      listeners: [],
    },
  ];
}

function rows(path: string, table: "promises" | "tasks"): Record<string, unknown> {
  const db = openTables(path);
  try {
    return Object.fromEntries(
      db
        .query<{ id: string; record: string }, []>(`SELECT id, record FROM ${table}`)
        .all()
        .map((row) => [row.id, JSON.parse(row.record)]),
    );
  } finally {
    db.close();
  }
}

function foldedThrough(path: string): number {
  const db = openTables(path);
  try {
    return new Tables(db).foldedThrough();
  } finally {
    db.close();
  }
}

describe("commit log records", () => {
  test("round-trip: every commit comes back in order, with its segment number", () => {
    const commits: StoreOp[][] = [[task("a", 0)], [task("a", 1), promise("p")], [["reset"]]];
    const bytes = Buffer.concat(commits.map((ops) => encodeRecord(7, ops)));
    expect(decodeSegment(bytes)).toEqual({ seq: 7, commits });
  });

  test("a torn last record (a crash during the write) ends the segment before it", () => {
    const whole = Buffer.concat([encodeRecord(3, [task("a", 0)]), encodeRecord(3, [task("a", 1)])]);
    for (const cut of [whole.length - 1, whole.length - 20, encodeRecord(3, [task("a", 0)]).length + 5]) {
      expect(decodeSegment(whole.subarray(0, cut)).commits).toEqual([[task("a", 0)]]);
    }
  });

  test("a record whose bytes changed (crc mismatch) ends the segment there", () => {
    const first = encodeRecord(3, [task("a", 0)]);
    const second = encodeRecord(3, [task("a", 1)]);
    const third = encodeRecord(3, [task("a", 2)]);
    const at = RECORD_HEADER_BYTES + 4;
    second.writeUInt8(second.readUInt8(at) ^ 0x01, at);
    expect(decodeSegment(Buffer.concat([first, second, third])).commits).toEqual([[task("a", 0)]]);
  });

  test("what a reused file still holds from an older segment is not read as part of the new one", () => {
    const old = Buffer.concat([1, 2, 3, 4].map((v) => encodeRecord(4, [task("old", v)])));
    const fresh = encodeRecord(9, [task("new", 0)]);
    const file = Buffer.from(old);
    fresh.copy(file, 0);
    // The old records after the new one are intact but carry segment 4.
    expect(decodeSegment(file)).toEqual({ seq: 9, commits: [[task("new", 0)]] });
  });

  test("zero bytes (an allocated, unused file) hold no commits", () => {
    expect(decodeSegment(new Uint8Array(4096))).toEqual({ seq: 0, commits: [] });
    const record = encodeRecord(2, [task("a", 0)]);
    const file = Buffer.concat([record, new Uint8Array(4096)]);
    expect(decodeSegment(file).commits).toHaveLength(1);
  });
});

describe("folding into the tables", () => {
  test("each row gets its last write; a row put and then removed is not written; the fold is recorded", () => {
    const path = dbPath();
    const db = openTables(path);
    const tables = new Tables(db);
    tables.fold(
      [
        [promise("p"), task("t", 0), ["ptimeout", "p", 10]],
        [promise("p", "resolved"), task("t", 1), ["del", "promise_timeouts", "p"]],
        [promise("gone"), ["del", "promises", "gone"]],
      ],
      5,
    );
    expect(tables.foldedThrough()).toBe(5);
    db.close();
    expect(Object.keys(rows(path, "promises"))).toEqual(["p"]);
    expect(rows(path, "promises").p).toMatchObject({ state: "resolved" });
    expect(rows(path, "tasks").t).toMatchObject({ version: 1 });
  });

  test("a reset empties every table, and only what follows it is written", () => {
    const path = dbPath();
    const db = openTables(path);
    const tables = new Tables(db);
    tables.fold([[promise("before")]], 1);
    tables.fold([[promise("dropped")], [["reset"]], [promise("after")]], 2);
    db.close();
    expect(Object.keys(rows(path, "promises"))).toEqual(["after"]);
  });
});

describe("recovery", () => {
  test("a restart folds the segments not yet folded, in order, and ignores the ones already folded", () => {
    const path = dbPath();
    const db = openTables(path);
    new Tables(db).fold([[task("t", 1)]], 4);
    db.close();
    // Segment 4 is folded (it says version 1); its file was reused for 6 and then 5 got a new file.
    writeFileSync(
      `${path}.log.0`,
      Buffer.concat([encodeRecord(6, [task("t", 3)]), encodeRecord(4, [task("t", 1)])]),
    );
    writeFileSync(`${path}.log.1`, encodeRecord(5, [task("t", 2), promise("p")]));
    writeFileSync(`${path}.log.2`, encodeRecord(3, [task("t", 0), promise("stale")]));

    const engine = new IndexedEngine();
    const recovered = recover(path, engine);
    expect(engine.tasks.get("t")?.version).toBe(3);
    expect([...engine.promises.keys()]).toEqual(["p"]);
    expect(foldedThrough(path)).toBe(6);
    expect(recovered.nextSeq).toBe(7);
    expect(recovered.segmentFiles.sort()).toEqual([0, 1, 2].map((i) => `${path}.log.${i}`));
  });

  test("a fresh state file starts at segment 1 with no segment files", () => {
    const engine = new IndexedEngine();
    const recovered = recover(dbPath(), engine);
    expect(recovered).toEqual({ outbox: [], segmentFiles: [], nextSeq: 1 });
    expect(engine.promises.size).toBe(0);
  });
});

describe("the commit log writer", () => {
  test("allocates the first segment before any commit and keeps two spare files ready", async () => {
    const path = dbPath();
    const segmentBytes = 64 * 1024;
    const fatal: unknown[] = [];
    const log = new CommitLog({
      dbPath: path,
      freeFiles: [],
      nextSeq: 1,
      segmentBytes,
      synchronous: "full",
      onFatal: (e) => fatal.push(e),
    });
    try {
      const sizes = () => segmentFiles(path).map((f) => statSync(f.path).size);
      expect(statSync(`${path}.log.0`).size).toBe(segmentBytes);
      await waitFor(() => sizes().length === 3 && sizes().every((size) => size === segmentBytes), {
        timeout: 10_000,
        message: "two spare segment files allocated",
      });
      log.append([task("a", 0)]);
      expect(decodeSegment(readFileSync(`${path}.log.0`)).commits).toEqual([[task("a", 0)]]);
    } finally {
      await log.close();
    }
    expect(fatal).toEqual([]);

    // A file shorter than a segment (as one written with a smaller --log-segment-bytes) is allocated before use.
    writeFileSync(`${path}.log.0`, encodeRecord(1, [task("a", 0)]));
    const engine = new IndexedEngine();
    const recovered = recover(path, engine);
    const again = new CommitLog({
      dbPath: path,
      freeFiles: recovered.segmentFiles,
      nextSeq: recovered.nextSeq,
      segmentBytes,
      synchronous: "full",
      onFatal: (e) => fatal.push(e),
    });
    try {
      expect(statSync(`${path}.log.0`).size).toBe(segmentBytes);
      expect(segmentFiles(path)).toHaveLength(3);
    } finally {
      await again.close();
    }
    expect(fatal).toEqual([]);
  });

  for (const synchronous of SYNCHRONOUS_MODES) {
    test(`synchronous ${synchronous}: seals full segments, folds them on its thread, reuses their files, and loses nothing when abandoned`, async () => {
      const path = dbPath();
      const fatal: unknown[] = [];
      const log = new CommitLog({
        dbPath: path,
        freeFiles: [],
        nextSeq: 1,
        segmentBytes: 2048,
        synchronous,
        onFatal: (error) => fatal.push(error),
      });
      const count = 300;
      const foldedAll = () =>
        waitFor(() => log.foldedThrough === log.seq - 1, {
          timeout: 10_000,
          message: "sealed segments folded",
        });
      // A burst: segments are sealed faster than they are folded, so new files are made.
      for (let i = 0; i < count / 2; i++) log.append([task(`t${i % 40}`, i), promise(`p${i}`)]);
      await foldedAll();
      const files = segmentFiles(path).length;
      const sealed = log.seq;
      // At an even pace, each new segment reuses a file whose segment was folded.
      for (let i = count / 2; i < count; i++) {
        log.append([task(`t${i % 40}`, i), promise(`p${i}`)]);
        if (i % 4 === 0) await foldedAll();
      }
      await foldedAll();
      expect(foldedThrough(path)).toBe(log.seq - 1);
      expect(fatal).toEqual([]);
      expect(log.seq - sealed).toBeGreaterThan(10);
      expect(segmentFiles(path).length).toBeLessThanOrEqual(files + 1);
      const active = segmentFiles(path)
        .map((f) => decodeSegment(readFileSync(f.path)))
        .find((s) => s.seq === log.seq);
      expect(active?.commits.length).toBeGreaterThan(0);

      // No close: as after a kill, the next start folds the active segment itself.
      const engine = new IndexedEngine();
      const recovered = recover(path, engine);
      expect(engine.promises.size).toBe(count);
      for (let t = 0; t < 40; t++) {
        const last = count - 40 + t;
        expect(engine.tasks.get(`t${last % 40}`)?.version).toBe(last);
      }
      expect(recovered.nextSeq).toBe(log.seq + 1);
      await log.close();
    });
  }
});

describe("the folding thread refuses to fold what would hide lost commits", () => {
  async function folder(path: string) {
    const worker = new Worker(resolve(import.meta.dir, "../../harness/resonate-server/fold-worker.ts"));
    const replies: FolderReply[] = [];
    worker.onmessage = (event: MessageEvent<FolderReply>) => replies.push(event.data);
    worker.postMessage({ type: "open", dbPath: path } satisfies FolderRequest);
    return {
      replies,
      post: (request: FolderRequest) => worker.postMessage(request),
      [Symbol.asyncDispose]: async () => {
        await worker.terminate();
      },
    };
  }

  test("a segment out of order fails the thread, and nothing after the failure is folded", async () => {
    const path = dbPath();
    writeFileSync(`${path}.log.0`, encodeRecord(1, [task("a", 1)]));
    writeFileSync(`${path}.log.1`, encodeRecord(2, [task("a", 2)]));
    await using thread = await folder(path);
    const bytes = (seq: number) => encodeRecord(seq, [task("a", seq)]).length;
    thread.post({ type: "fold", path: `${path}.log.1`, seq: 2, bytes: bytes(2) });
    await waitFor(() => thread.replies.length > 0, { timeout: 5_000, message: "reply to the fold" });
    expect(thread.replies[0]).toMatchObject({ type: "failed" });
    expect(JSON.stringify(thread.replies[0])).toContain("segment 1 is not folded");
    // Even the missing segment is refused now: the server is stopping and a restart folds both.
    thread.post({ type: "fold", path: `${path}.log.0`, seq: 1, bytes: bytes(1) });
    thread.post({ type: "close" });
    await waitFor(() => thread.replies.some((r) => r.type === "closed"), {
      timeout: 5_000,
      message: "closed",
    });
    expect(thread.replies.map((r) => r.type)).toEqual(["failed", "closed"]);
    expect(foldedThrough(path)).toBe(0);
  });

  test("a sealed segment that reads back shorter than it was written fails the fold", async () => {
    const path = dbPath();
    const first = encodeRecord(1, [task("a", 1)]);
    const second = encodeRecord(1, [task("a", 2)]);
    second.writeUInt8(second.readUInt8(RECORD_HEADER_BYTES) ^ 0x01, RECORD_HEADER_BYTES);
    writeFileSync(`${path}.log.0`, Buffer.concat([first, second]));
    await using thread = await folder(path);
    thread.post({ type: "fold", path: `${path}.log.0`, seq: 1, bytes: first.length + second.length });
    await waitFor(() => thread.replies.length > 0, { timeout: 5_000, message: "reply to the fold" });
    expect(thread.replies[0]).toMatchObject({ type: "failed" });
    expect(JSON.stringify(thread.replies[0])).toContain(`reads back ${first.length} of the`);
    expect(foldedThrough(path)).toBe(0);
  });
});

/** The layout of state files written before `user_version` was kept (version 0). */
const LAYOUT_V0 = `
CREATE TABLE promises (id TEXT PRIMARY KEY, record TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE tasks (id TEXT PRIMARY KEY, record TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE schedules (id TEXT PRIMARY KEY, record TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE promise_timeouts (id TEXT PRIMARY KEY, timeout INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE task_timeouts (id TEXT PRIMARY KEY, type INTEGER NOT NULL, timeout INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE schedule_timeouts (id TEXT PRIMARY KEY, timeout INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE outbox (key TEXT PRIMARY KEY, address TEXT NOT NULL, message TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
`;

function rawFile(path: string, sql: string): void {
  const db = new Database(path, { create: true });
  try {
    db.exec("PRAGMA journal_mode = WAL;");
    db.exec(sql);
  } finally {
    db.close();
  }
}

function layout(path: string): { version: number; tables: Record<string, string> } {
  const db = new Database(path, { readonly: true });
  try {
    const version = db.query<{ user_version: number }, []>("PRAGMA user_version").get()?.user_version ?? -1;
    const tables = db
      .query<{ name: string; sql: string }, []>("SELECT name, sql FROM sqlite_schema WHERE type = 'table'")
      .all();
    return { version, tables: Object.fromEntries(tables.map((t) => [t.name, t.sql])) };
  } finally {
    db.close();
  }
}

describe("the state file's layout", () => {
  test("a file of layout 0 (records WITHOUT ROWID) is converted on open: every row is kept, in rowid tables", () => {
    const path = dbPath();
    const [, , , pRecord] = promise("p", "resolved") as ["put", "promises", string, object];
    const [, , , tRecord] = task("p", 3) as ["put", "tasks", string, object];
    const schedule: EngineSchedule = {
      id: "s",
      cron: "* * * * *",
      promiseId: "s.{{.timestamp}}",
      promiseTimeout: 60_000,
      promiseParam: { headers: {}, data: "" },
      promiseTags: {},
      createdAt: 1,
    };
    rawFile(
      path,
      `${LAYOUT_V0}
      INSERT INTO promises VALUES ('p', '${JSON.stringify(pRecord)}');
      INSERT INTO tasks VALUES ('p', '${JSON.stringify(tRecord)}');
      INSERT INTO schedules VALUES ('s', '${JSON.stringify(schedule)}');
      INSERT INTO promise_timeouts VALUES ('p', 4000000000000);
      INSERT INTO meta VALUES ('folded_through', 6);`,
    );
    expect(layout(path).version).toBe(0);

    const engine = new IndexedEngine();
    const recovered = recover(path, engine);
    expect(engine.promises.get("p")).toMatchObject({ id: "p", state: "resolved", settledAt: 2 });
    expect(engine.tasks.get("p")).toMatchObject({ id: "p", version: 3, state: "pending" });
    expect(engine.schedules.get("s")).toEqual(schedule);
    expect(engine.pTimeouts).toEqual([{ id: "p", timeout: 4_000_000_000_000 }]);
    expect(recovered.nextSeq).toBe(7);

    const after = layout(path);
    expect(after.version).toBe(SCHEMA_VERSION);
    for (const table of ["promises", "tasks", "schedules"])
      expect(after.tables[table]).not.toContain("WITHOUT ROWID");
    expect(after.tables.promise_timeouts).toContain("WITHOUT ROWID");
    expect(Object.keys(after.tables).filter((name) => name.endsWith("_v0"))).toEqual([]);
    // Opening it again changes nothing.
    openTables(path).close();
    expect(layout(path)).toEqual(after);
    expect(rows(path, "promises")).toEqual({ p: pRecord });
  });

  test("a conversion that fails part way leaves the file as it was", () => {
    const path = dbPath();
    // A layout-0 file whose tasks table lacks the record column the conversion copies.
    rawFile(
      path,
      `${LAYOUT_V0.replace("CREATE TABLE tasks (id TEXT PRIMARY KEY, record TEXT NOT NULL)", "CREATE TABLE tasks (id TEXT PRIMARY KEY, body TEXT)")}
      INSERT INTO promises VALUES ('p', '{}');`,
    );
    const before = layout(path);
    expect(() => openTables(path)).toThrow(/record/);
    expect(layout(path)).toEqual(before);
  });

  test("a file of a later layout is refused with a message, and left as it was", () => {
    const path = dbPath();
    rawFile(
      path,
      `${LAYOUT_V0} INSERT INTO promises VALUES ('p', '{}'); PRAGMA user_version = ${SCHEMA_VERSION + 1};`,
    );
    const before = layout(path);
    expect(() => openTables(path)).toThrow(
      `the state file has layout version ${SCHEMA_VERSION + 1}; this server reads up to ${SCHEMA_VERSION}`,
    );
    expect(layout(path)).toEqual(before);

    const run = Bun.spawnSync([
      process.execPath,
      resolve(import.meta.dir, "../../harness/resonate-server/main.ts"),
      "--port",
      "0",
      "--db",
      path,
    ]);
    expect(run.exitCode).toBe(2);
    expect(run.stderr.toString()).toContain(`resonate server: cannot open the state file ${path}:`);
    expect(run.stderr.toString()).toContain(`layout version ${SCHEMA_VERSION + 1}`);
    expect(layout(path)).toEqual(before);
  });
});

describe("server flags", () => {
  const main = resolve(import.meta.dir, "../../harness/resonate-server/main.ts");
  const refused = [
    ...["0", "-5", "1.5", "lots", ""].map((bad) => ({
      flag: `--log-segment-bytes=${bad}`,
      message: `--log-segment-bytes must be a positive number of bytes, got "${bad}"`,
    })),
    ...["off", "FULL", "extra", ""].map((bad) => ({
      flag: `--synchronous=${bad}`,
      message: `--synchronous must be one of full, normal, got "${bad}"`,
    })),
    ...[
      ["messages-poll-interval", "milliseconds"],
      ["timeouts-poll-interval", "milliseconds"],
      ["messages-batch-size", "messages"],
      ["transports-http-poll-max-connections", "connections"],
    ].flatMap(([name, unit]) =>
      ["0", "-1", "0.5", "soon"].map((bad) => ({
        flag: `--${name}=${bad}`,
        message: `--${name} must be a positive number of ${unit}, got "${bad}"`,
      })),
    ),
  ];
  for (const { flag, message } of refused) {
    test(`${flag} is refused with exit 2 and a message, and no state file is made`, () => {
      const path = dbPath();
      const run = Bun.spawnSync([process.execPath, main, "--port", "0", "--db", path, flag]);
      expect(run.exitCode).toBe(2);
      expect(run.stderr.toString()).toContain(message);
      expect(existsSync(path)).toBe(false);
      expect(segmentFiles(path)).toEqual([]);
    });
  }
});

describe("bench:fold", () => {
  const bench = resolve(import.meta.dir, "../../harness/resonate-server/fold-bench.ts");

  test("folds the segments it was asked for and prints one row per fold", () => {
    const run = Bun.spawnSync([process.execPath, bench, "--segments", "2", "--segment-bytes", "200000"]);
    expect(run.exitCode).toBe(0);
    const rows = run.stdout
      .toString()
      .split("\n")
      .filter((line) => /^\s+\d+\s/.test(line))
      .map((line) => line.trim().split(/\s+/).map(Number));
    expect(rows.map((row) => row[0])).toEqual([1, 2]);
    for (const [, quotes, promises, walMiB] of rows) {
      expect(quotes).toBeGreaterThan(0);
      expect(promises).toBeGreaterThan(0);
      expect(walMiB).toBeGreaterThan(0);
    }
    // Every quote of both segments is in the table after the second fold.
    expect(rows[1]?.[2]).toBe((rows[0]?.[1] ?? 0) + (rows[1]?.[1] ?? 0));
  });

  test("a bad flag is refused with exit 2 and a message", () => {
    const run = Bun.spawnSync([process.execPath, bench, "--segment-bytes", "lots"]);
    expect(run.exitCode).toBe(2);
    expect(run.stderr.toString()).toContain('--segment-bytes must be a positive integer, got "lots"');
  });
});
