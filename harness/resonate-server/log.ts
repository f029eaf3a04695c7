import {
  closeSync,
  fdatasyncSync,
  fstatSync,
  fsyncSync,
  openSync,
  readdirSync,
  readFileSync,
  writeSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import type { StoreOp } from "./store-ops.ts";

/**
 * The commit log: the part of the state file that every acknowledged
 * request is written to before its answer goes out.
 *
 * A commit is one record appended to the active segment. With
 * `synchronous: "full"` each commit is then synced (`fdatasync`), so an
 * answered request survives a power loss too. With `"normal"` (the real
 * server's SQLite setting, WAL with `synchronous=NORMAL`) a commit is in
 * the OS's page cache when it is answered: it survives the server process
 * being killed, and a power loss may take the last commits of the active
 * segment; a segment is synced when it is sealed and when the log closes,
 * so what survives is always a prefix of the commits.
 *
 * Segments are files next to the SQLite file (`<db>.log.0`,
 * `<db>.log.1`, …) and are reused: a full segment is sealed,
 * a new one is started in a free file, and a background thread folds the
 * sealed one into the SQLite tables (the last write of each row wins) and
 * records in the same transaction that it did (`folded_through`). Only
 * then is its file free again. Every segment file is allocated to the
 * segment size before commits go into it (spare files by the folding thread,
 * ahead of time), so a commit overwrites blocks in place and its sync writes
 * no file-system metadata.
 *
 * Record: `len u32 | crc u32 | seq u32 | payload (len bytes of JSON)`, little
 * endian; the crc is CRC-32 of `seq | payload`. A segment's records all carry
 * its sequence number, so what a reused file still holds from an earlier
 * segment is never read as part of the current one: reading stops at the
 * first record that is torn, stale or of another segment.
 */
export const RECORD_HEADER_BYTES = 12;

/** Encodes one commit as a record of segment `seq`. */
export function encodeRecord(seq: number, ops: StoreOp[]): Buffer {
  const json = JSON.stringify(ops);
  const length = Buffer.byteLength(json);
  const record = Buffer.allocUnsafe(RECORD_HEADER_BYTES + length);
  record.writeUInt32LE(length, 0);
  record.write(json, RECORD_HEADER_BYTES, "utf8");
  return stamp(record, seq);
}

/** Sets the segment a record belongs to, and its crc. */
function stamp(record: Buffer, seq: number): Buffer {
  record.writeUInt32LE(seq, 8);
  record.writeUInt32LE(Bun.hash.crc32(record.subarray(8)), 4);
  return record;
}

/** One segment read back: its sequence number and its commits in order (empty when it has none). */
export interface Segment {
  seq: number;
  commits: StoreOp[][];
}

/**
 * The records of the segment a file holds: the run of intact records from
 * offset 0 that carry the first record's sequence number. A zero length, a
 * bad crc, a record running past the end or another sequence number ends it.
 */
export function* segmentRecords(bytes: Uint8Array): Generator<{ seq: number; ops: StoreOp[]; end: number }> {
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let seq: number | undefined;
  let offset = 0;
  while (offset + RECORD_HEADER_BYTES <= view.length) {
    const length = view.readUInt32LE(offset);
    const end = offset + RECORD_HEADER_BYTES + length;
    if (length === 0 || end > view.length) return;
    const recordSeq = view.readUInt32LE(offset + 8);
    if (seq !== undefined && recordSeq !== seq) return;
    if (Bun.hash.crc32(view.subarray(offset + 8, end)) !== view.readUInt32LE(offset + 4)) return;
    let ops: StoreOp[];
    try {
      ops = JSON.parse(view.toString("utf8", offset + RECORD_HEADER_BYTES, end)) as StoreOp[];
    } catch {
      return;
    }
    seq = recordSeq;
    yield { seq, ops, end };
    offset = end;
  }
}

/** Reads the segment a file holds (see `segmentRecords`); `seq` is 0 when it holds none. */
export function decodeSegment(bytes: Uint8Array): Segment {
  const commits: StoreOp[][] = [];
  let seq = 0;
  for (const record of segmentRecords(bytes)) {
    seq = record.seq;
    commits.push(record.ops);
  }
  return { seq, commits };
}

/** The segment files of the state file at `dbPath`, by index. */
export function segmentFiles(dbPath: string): { index: number; path: string }[] {
  const prefix = `${basename(dbPath)}.log.`;
  const dir = dirname(dbPath);
  return readdirSync(dir)
    .filter((name) => name.startsWith(prefix) && /^\d+$/.test(name.slice(prefix.length)))
    .map((name) => ({ index: Number(name.slice(prefix.length)), path: join(dir, name) }))
    .sort((a, b) => a.index - b.index);
}

/** Every segment file of the state file at `dbPath`, read back, by file index. */
export function readSegments(dbPath: string): (Segment & { index: number; path: string })[] {
  return segmentFiles(dbPath).map((file) => ({ ...file, ...decodeSegment(readFileSync(file.path)) }));
}

/** Makes a new directory entry durable. */
export function syncDir(path: string): void {
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes all of `bytes` at `position`. */
export function writeFully(fd: number, bytes: Uint8Array, position: number): void {
  let done = 0;
  while (done < bytes.length) {
    done += writeSync(fd, bytes, done, bytes.length - done, position + done);
  }
}

/**
 * Writes zero bytes over `[from, to)` of `fd`, a chunk at a time, pausing
 * (yielding) after each chunk. Allocated blocks, unlike `fallocate`'s
 * unwritten extents, let a later overwrite sync without metadata.
 */
export function* fillZeros(fd: number, from: number, to: number): Generator<void> {
  const zeros = new Uint8Array(Math.min(Math.max(to - from, 0), 256 * 1024));
  for (let at = from; at < to; at += zeros.length) {
    writeFully(fd, zeros.subarray(0, Math.min(zeros.length, to - at)), at);
    yield;
  }
}

/** How long `close` waits for the folding thread to close the SQLite file. */
const CLOSE_TIMEOUT_MS = 5_000;

/** Messages between the commit log and its folding thread. */
export type FolderRequest =
  | { type: "open"; dbPath: string }
  | { type: "fold"; path: string; seq: number; bytes: number }
  | { type: "prepare"; path: string; bytes: number }
  | { type: "close" };
export type FolderReply =
  | { type: "folded"; path: string; seq: number }
  | { type: "prepared"; path: string }
  | { type: "closed" }
  | { type: "failed"; error: string };

/**
 * When a commit is synced: `full` before its answer, `normal` with the
 * segment that holds it (see the top of this file).
 */
export type Synchronous = "full" | "normal";
export const SYNCHRONOUS_MODES: readonly Synchronous[] = ["full", "normal"];
/** The real server's: its SQLite store runs WAL with `synchronous=NORMAL`. */
export const DEFAULT_SYNCHRONOUS: Synchronous = "normal";

export interface CommitLogOptions {
  /** The SQLite file; segments are `<dbPath>.log.<n>` next to it. */
  dbPath: string;
  /** When commits are synced. */
  synchronous: Synchronous;
  /** Segment files whose commits are all folded, free to reuse. */
  freeFiles: string[];
  /** Sequence number of the first segment, above every one the files hold. */
  nextSeq: number;
  /** A segment is sealed once its next record would take it past this size. */
  segmentBytes: number;
  /** Called when a write, a sync or the folding thread fails: what is on disk can no longer be vouched for. */
  onFatal: (error: unknown) => void;
}

/**
 * Allocated segment files kept ready, so sealing a segment never waits for
 * one: two, since a fold hands its file back only a little after the next
 * segment is sealed.
 */
const SPARE_FILES = 2;

/** The writer of the commit log (see the top of this file); lives on the server's event loop. */
export class CommitLog {
  readonly #opts: CommitLogOptions;
  readonly #free: string[];
  readonly #folder: Worker;
  #nextIndex: number;
  /** Spare files the folding thread is allocating. */
  #preparing = 0;
  #fd = -1;
  #path = "";
  #seq: number;
  #pos = 0;
  #folded = 0;
  #closed: (() => void) | undefined;

  constructor(opts: CommitLogOptions) {
    this.#opts = opts;
    this.#free = [...opts.freeFiles];
    this.#nextIndex = Math.max(-1, ...segmentFiles(opts.dbPath).map((f) => f.index)) + 1;
    this.#seq = opts.nextSeq;
    this.#folder = new Worker(new URL("./fold-worker.ts", import.meta.url).href);
    this.#folder.onmessage = (event: MessageEvent<FolderReply>) => this.#onReply(event.data);
    this.#folder.onerror = (event) => opts.onFatal(event.error ?? new Error(event.message));
    this.#folder.unref();
    this.#post({ type: "open", dbPath: opts.dbPath });
    this.#start(this.#free.shift() ?? this.#createFile());
    this.#prepareSpare();
  }

  /** The sequence number of the segment being written. */
  get seq(): number {
    return this.#seq;
  }

  /** The last segment the folding thread reported folded (0 before the first), whose file is free again. */
  get foldedThrough(): number {
    return this.#folded;
  }

  /** Appends one commit; returns once it is written, and synced too when `synchronous` is `full`. */
  append(ops: StoreOp[]): void {
    const record = encodeRecord(this.#seq, ops);
    if (this.#pos > 0 && this.#pos + record.length > this.#opts.segmentBytes) {
      this.#seal();
      stamp(record, this.#seq);
    }
    writeFully(this.#fd, record, this.#pos);
    if (this.#opts.synchronous === "full") fdatasyncSync(this.#fd);
    this.#pos += record.length;
  }

  /**
   * Closes the active segment and stops the folding thread: a fold under way
   * is rolled back and, like the ones not started, redone on the next start.
   * Resolves once the thread has closed the SQLite file.
   */
  close(): Promise<void> {
    if (this.#fd >= 0) this.#closeSegment();
    this.#fd = -1;
    const closed = new Promise<void>((resolve) => {
      this.#closed = resolve;
      // A thread that died does not answer; it holds nothing that needs closing then.
      setTimeout(() => {
        void this.#folder.terminate();
        resolve();
      }, CLOSE_TIMEOUT_MS).unref();
    });
    this.#post({ type: "close" });
    return closed;
  }

  /** Hands the active segment to the folding thread and starts the next one. */
  #seal(): void {
    this.#closeSegment();
    this.#post({ type: "fold", path: this.#path, seq: this.#seq, bytes: this.#pos });
    this.#seq++;
    this.#start(this.#free.shift() ?? this.#createFile());
    this.#prepareSpare();
  }

  /** Closes the active segment's file, synced first unless every commit already was. */
  #closeSegment(): void {
    if (this.#opts.synchronous !== "full") fdatasyncSync(this.#fd);
    closeSync(this.#fd);
    this.#fd = -1;
  }

  /**
   * Makes `path` the active segment. A file shorter than a segment (a new
   * one, when no spare is ready) is allocated first, so no commit's sync
   * has to write the file's new size too.
   */
  #start(path: string): void {
    this.#fd = openSync(path, "r+");
    this.#path = path;
    this.#pos = 0;
    const size = fstatSync(this.#fd).size;
    if (size < this.#opts.segmentBytes) {
      for (const _ of fillZeros(this.#fd, size, this.#opts.segmentBytes));
      fdatasyncSync(this.#fd);
    }
  }

  /** A new, empty segment file, its name durable before anything is written to it. */
  #createFile(): string {
    const path = `${this.#opts.dbPath}.log.${this.#nextIndex++}`;
    closeSync(openSync(path, "wx"));
    syncDir(dirname(path));
    return path;
  }

  /** Has the folding thread allocate files until `SPARE_FILES` are free or on their way. */
  #prepareSpare(): void {
    while (this.#free.length + this.#preparing < SPARE_FILES) {
      this.#preparing++;
      this.#post({
        type: "prepare",
        path: `${this.#opts.dbPath}.log.${this.#nextIndex++}`,
        bytes: this.#opts.segmentBytes,
      });
    }
  }

  #onReply(reply: FolderReply): void {
    switch (reply.type) {
      case "folded":
        this.#folded = reply.seq;
        this.#free.push(reply.path);
        break;
      case "prepared":
        this.#preparing--;
        this.#free.push(reply.path);
        break;
      case "closed":
        void this.#folder.terminate();
        this.#closed?.();
        break;
      case "failed":
        this.#opts.onFatal(new Error(`commit log: folding thread failed: ${reply.error}`));
        break;
    }
  }

  #post(request: FolderRequest): void {
    this.#folder.postMessage(request);
  }
}
