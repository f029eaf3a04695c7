import type { Database } from "bun:sqlite";
import { closeSync, fdatasyncSync, openSync, readFileSync, readlinkSync } from "node:fs";
import { setPriority } from "node:os";
import { dirname } from "node:path";
import { type FolderReply, type FolderRequest, fillZeros, segmentRecords, syncDir } from "./log.ts";
import { LastWrites, openTables, Tables } from "./store.ts";
import type { StoreOp } from "./store-ops.ts";

/**
 * The commit log's folding thread: folds sealed segments into the SQLite
 * tables, in the order they were sealed, and allocates spare segment files.
 * It is the only writer of the SQLite file while the server runs.
 *
 * It shares the machine with the event loop it serves, so it works in
 * slices of a few milliseconds with pauses between them: a fold spreads
 * over a fraction of the time the next segment takes to fill instead of
 * taking a core away in one burst. A fold is one transaction, which also
 * records the fold; a crash before it commits leaves the segment unfolded,
 * and the next start folds it again from its first record.
 */
declare const self: Worker;

/** Work for at most this long (ms) … */
const SLICE_MS = 4;
/** … then leave the core to others for this long (ms). */
const PAUSE_MS = 6;
/** Rows written between checks of the slice. */
const ROWS_PER_SLICE = 64;

let db: Database | undefined;
let tables: Tables | undefined;
/** After a failure nothing more is done: a later fold would record itself over the failed one. */
let failed = false;
/** Set by `close`: the fold under way stops at its next pause. */
let closing = false;
const queue: FolderRequest[] = [];
let running = false;
let sliceStart = performance.now();

/** Niceness of this thread: when a core is contended, the event loop it serves wins, and folding waits. */
const FOLD_NICENESS = 10;

/**
 * Lowers this thread's scheduling priority (Linux, where a thread id is a
 * valid target of setpriority). Elsewhere, or where it is not allowed, the
 * thread keeps its priority; folding is paced either way.
 */
function lowerPriority(): void {
  try {
    const tid = Number(readlinkSync("/proc/thread-self").split("/").at(-1));
    if (Number.isInteger(tid) && tid > 0) setPriority(tid, FOLD_NICENESS);
  } catch {
    // not Linux, or not permitted
  }
}

function reply(message: FolderReply): void {
  self.postMessage(message);
}

/** Pauses once the current slice of work is used up. */
async function yieldSlice(): Promise<void> {
  if (performance.now() - sliceStart < SLICE_MS) return;
  await Bun.sleep(PAUSE_MS);
  sliceStart = performance.now();
}

async function fold(path: string, seq: number, bytes: number): Promise<void> {
  if (!db || !tables) throw new Error("fold before open");
  const writes = new LastWrites();
  let end = 0;
  for (const record of segmentRecords(readFileSync(path))) {
    if (record.seq !== seq) break;
    writes.add(record.ops);
    end = record.end;
    await yieldSlice();
    if (closing) return;
  }
  // The writer synced `bytes` of this segment: reading back less means some were damaged.
  if (end !== bytes)
    throw new Error(`${path}: segment ${seq} reads back ${end} of the ${bytes} bytes written`);
  const ops: StoreOp[] = writes.ops();
  // One transaction, so each page is written once however many rows share it;
  // only this thread writes the file, so holding it open across pauses blocks no one.
  db.exec("BEGIN IMMEDIATE");
  try {
    // Segments fold strictly in order: recording a later one over a gap would hide the gap on restart.
    const last = tables.foldedThrough();
    if (last !== seq - 1)
      throw new Error(`segment ${seq} comes after ${last}; segment ${seq - 1} is not folded`);
    let at = 0;
    for (; at + ROWS_PER_SLICE < ops.length; at += ROWS_PER_SLICE) {
      tables.write(ops.slice(at, at + ROWS_PER_SLICE));
      await yieldSlice();
      if (closing) {
        db.exec("ROLLBACK");
        return;
      }
    }
    tables.write(ops.slice(at), seq);
    db.exec("COMMIT");
  } catch (error) {
    if (db.inTransaction) db.exec("ROLLBACK");
    throw error;
  }
}

/** Writes `bytes` zero bytes to a new file, so later commits overwrite allocated blocks. */
async function allocate(path: string, bytes: number): Promise<void> {
  const fd = openSync(path, "wx");
  try {
    for (const _ of fillZeros(fd, 0, bytes)) await yieldSlice();
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
  syncDir(dirname(path));
}

async function run(request: FolderRequest): Promise<void> {
  switch (request.type) {
    case "open":
      lowerPriority();
      db = openTables(request.dbPath);
      db.exec("PRAGMA cache_size = -65536;");
      tables = new Tables(db);
      break;
    case "fold":
      await fold(request.path, request.seq, request.bytes);
      if (!closing) reply({ type: "folded", path: request.path, seq: request.seq });
      break;
    case "prepare":
      await allocate(request.path, request.bytes);
      reply({ type: "prepared", path: request.path });
      break;
    case "close":
      db?.close();
      db = undefined;
      tables = undefined;
      reply({ type: "closed" });
      break;
  }
}

async function drain(): Promise<void> {
  running = true;
  sliceStart = performance.now();
  try {
    for (let request = queue.shift(); request; request = queue.shift()) await run(request);
  } catch (error) {
    failed = true;
    queue.length = 0;
    if (db?.inTransaction) db.exec("ROLLBACK");
    reply({ type: "failed", error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  } finally {
    running = false;
  }
}

self.onmessage = (event: MessageEvent<FolderRequest>) => {
  if (event.data.type === "close") {
    // Folds not started are dropped; the next start redoes them.
    closing = true;
    failed = false;
    queue.length = 0;
  } else if (failed || closing) {
    return;
  }
  queue.push(event.data);
  if (!running) void drain();
};
