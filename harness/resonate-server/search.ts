/**
 * `promise.search`, `task.search` and `schedule.search`, answered as the real
 * Resonate server v0.9.8 answers them (its `src/server.rs`, the queries in
 * `src/persistence/persistence_sqlite.rs` and the request types in
 * `src/types.rs`): the same fields, checks, error texts, order and cursor.
 *
 * - `data` is read as serde reads it into the real server's structs: its
 *   known fields in key order (`cursor`, `limit`, `state`, `tags`), the first
 *   bad one answered `400 "Invalid request: <serde's text>"`, unknown fields
 *   ignored, `null` the same as absent. Then `limit` below 1 is `400 "Limit
 *   must be a positive integer"`, above 1000 `400 "Invalid 'limit' — must be
 *   between 1 and 1000"`; absent it is 100 (10 for schedules).
 * - Results are in the byte order of their ids (SQLite's `ORDER BY id`), after
 *   `cursor` when given (any string: it is an id bound, not a token). The
 *   answer carries `cursor`, the last id of the page, only when more match.
 * - `state` is the stored state, as there: a pending promise past its
 *   `timeoutAt` shows as `pending` until the timeout loop or a read of that
 *   promise times it out. `tags` match when every given key has exactly the
 *   given value. `task.search` has no `tags` and `schedule.search` no `state`
 *   (ignored, as unknown fields are).
 * - Records: promises as `promise.get` shows them; tasks as the real server's
 *   `task.get` does (`resumes` a count, `pid` and `ttl` while acquired).
 *
 * Why it reads SQLite through indexes, not a scan: a page merges the records
 * held in memory with those that left it, read from the cursor on through the
 * id index (or the state-and-id index, `store.ts`), so paging covers all the
 * server ever stored and a page costs what it reads, not the table: with
 * 100 000 promises in SQLite and 2 000 in memory a page of 100 took 1–5 ms
 * from the start, from the last 1 000 ids, of a state one in a thousand has,
 * or of a tag one in ten has (2026-12-02, 2 cores, `bun harness/resonate-server/search-bench.ts`).
 */
import type { IndexedEngine } from "./engine.ts";
import type { EnginePromise, EngineSchedule, EngineTask } from "./engine-types.ts";
import type { ColdStore } from "./store.ts";
import type { Invalid } from "./validate.ts";

/** The request kinds this module answers. */
export const SEARCH_KINDS: ReadonlySet<string> = new Set([
  "promise.search",
  "task.search",
  "schedule.search",
]);

/** The text of every JSON number of a request, by the object (or array) that holds it and its key. */
export type NumberSources = WeakMap<object, Map<string, string>>;

/**
 * Parses a request as `JSON.parse` does, keeping the text of each number: the
 * real server tells `10` from `10.0` and `1e3` (a float, refused where an
 * integer is expected), which the parsed value cannot. A number too large
 * for a double, or a string with half of a surrogate pair, fails the whole
 * request there (`Invalid request envelope: …`), and `invalid` says so here.
 */
export function parseKeepingNumbers(raw: string): {
  value: unknown;
  sources: NumberSources;
  invalid: string | undefined;
} {
  const sources: NumberSources = new WeakMap();
  let invalid: string | undefined;
  const parse = JSON.parse as (
    text: string,
    reviver: (this: object, key: string, value: unknown, context?: { source?: string }) => unknown,
  ) => unknown;
  const value = parse(raw, function (key, v, context) {
    if (typeof v === "number") {
      if (!Number.isFinite(v)) invalid ??= "number out of range";
      let held = sources.get(this);
      if (!held) {
        held = new Map();
        sources.set(this, held);
      }
      held.set(key, context?.source ?? String(v));
    } else if (typeof v === "string" && LONE_SURROGATE.test(v)) {
      invalid ??= "lone leading surrogate in hex escape";
    }
    return v;
  });
  return { value, sources, invalid: invalid && `Invalid request envelope: ${invalid}` };
}

// Half of a surrogate pair: serde_json refuses it; JSON.parse keeps it.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** A search request's fields, read and checked. */
export interface SearchQuery {
  state: string | undefined;
  tags: Record<string, string> | undefined;
  limit: number;
  cursor: string | undefined;
}

const PROMISE_STATES = ["pending", "resolved", "rejected", "rejected_canceled", "rejected_timedout"];
const TASK_STATES = ["pending", "acquired", "suspended", "halted", "fulfilled"];

/** The largest `limit`, and the `limit` of a request without one, as on the real server. */
export const SEARCH_LIMITS = {
  max: 1000,
  promiseDefault: 100,
  taskDefault: 100,
  scheduleDefault: 10,
} as const;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

class SerdeError extends Error {}
const invalidType = (what: string, expected: string) =>
  new SerdeError(`invalid type: ${what}, expected ${expected}`);

/**
 * Reads `data` of a search of `kind` as the real server does; an error
 * answer (always 400) when it would refuse it.
 */
export function parseSearch(kind: string, data: Obj, sources: NumberSources): SearchQuery | Invalid {
  const read = new SerdeReader(sources);
  let query: SearchQuery;
  try {
    // serde visits the fields in the order of the keys (serde_json's map is sorted), and they sort so.
    const cursor = read.option(data, "cursor", (v, h, k) => read.string(v, h, k));
    const limit = read.option(data, "limit", (v, h, k) => read.i64(v, h, k));
    const state =
      kind === "schedule.search"
        ? undefined
        : read.option(data, "state", (v, h, k) =>
            read.unitEnum(v, h, k, kind === "promise.search" ? PROMISE_STATES : TASK_STATES),
          );
    const tags =
      kind === "task.search" ? undefined : read.option(data, "tags", (v, h, k) => read.stringMap(v, h, k));
    if (limit !== undefined && limit < 1n) return bad("Limit must be a positive integer");
    if (limit !== undefined && limit > BigInt(SEARCH_LIMITS.max))
      return bad(`Invalid 'limit' — must be between 1 and ${SEARCH_LIMITS.max}`);
    query = {
      state,
      tags,
      cursor,
      limit:
        limit === undefined
          ? kind === "schedule.search"
            ? SEARCH_LIMITS.scheduleDefault
            : kind === "task.search"
              ? SEARCH_LIMITS.taskDefault
              : SEARCH_LIMITS.promiseDefault
          : Number(limit),
    };
  } catch (error) {
    if (error instanceof SerdeError) return bad(`Invalid request: ${error.message}`);
    throw error;
  }
  return query;
}

const bad = (message: string): Invalid => ({ status: 400, message });

/** serde's reading of a `serde_json::Value` into the real server's types, with its error texts. */
class SerdeReader {
  constructor(readonly sources: NumberSources) {}

  /** An `Option<T>` field: absent or null is `None`. */
  option<T>(holder: Obj, key: string, read: (v: unknown, holder: object, key: string) => T): T | undefined {
    const v = holder[key];
    return v === undefined || v === null ? undefined : read(v, holder, key);
  }

  string(v: unknown, holder: object, key: string): string {
    if (typeof v === "string") return v;
    throw invalidType(this.unexpected(v, holder, key), "a string");
  }

  i64(v: unknown, holder: object, key: string): bigint {
    if (typeof v === "number") {
      const n = this.number(holder, key, v);
      if (typeof n === "number") throw invalidType(`floating point \`${formatFloat(n)}\``, "i64");
      if (n > I64_MAX) throw new SerdeError(`invalid value: integer \`${n}\`, expected i64`);
      return n;
    }
    throw invalidType(this.unexpected(v, holder, key), "i64");
  }

  /** A `HashMap<String, String>`: its entries in key order, each value a string. */
  stringMap(v: unknown, holder: object, key: string): Record<string, string> {
    if (!isObj(v)) throw invalidType(this.unexpected(v, holder, key), "a map");
    for (const key of Object.keys(v).sort(compareIds)) this.string(v[key], v, key);
    return v as Record<string, string>;
  }

  /** An enum of unit variants: `"name"`, or `{"name": null}` as serde's externally tagged form. */
  unitEnum(v: unknown, holder: object, key: string, variants: string[]): string {
    const variant = (name: string) => {
      if (variants.includes(name)) return name;
      throw new SerdeError(
        `unknown variant \`${name}\`, expected one of ${variants.map((n) => `\`${n}\``).join(", ")}`,
      );
    };
    if (typeof v === "string") return variant(v);
    if (isObj(v)) {
      const keys = Object.keys(v);
      const only = keys[0];
      if (keys.length !== 1 || only === undefined)
        throw new SerdeError("invalid value: map, expected map with a single key");
      const name = variant(only);
      if (v[only] !== null) throw invalidType(this.unexpected(v[only], v, only), "unit");
      return name;
    }
    throw invalidType(this.unexpected(v, holder, key), "string or map");
  }

  /** What serde_json calls a value in its errors (`Unexpected`). */
  unexpected(v: unknown, holder: object, key: string): string {
    if (v === null) return "null";
    if (typeof v === "boolean") return `boolean \`${v}\``;
    if (typeof v === "string") return `string ${rustDebug(v)}`;
    if (Array.isArray(v)) return "sequence";
    if (typeof v === "number") {
      const n = this.number(holder, key, v);
      return typeof n === "number" ? `floating point \`${formatFloat(n)}\`` : `integer \`${n}\``;
    }
    return "map";
  }

  /**
   * A JSON number as serde_json holds it: an integer (a bigint) when its
   * text has no fraction or exponent and it fits a u64 or an i64, else a
   * float (a number), as `-0` is.
   */
  number(holder: object, key: string, v: number): bigint | number {
    const text = this.sources.get(holder)?.get(key) ?? String(v);
    if (/[.eE]/.test(text)) return v;
    const n = BigInt(text);
    if (text.startsWith("-")) return n === 0n || n < I64_MIN ? v : n;
    return n > U64_MAX ? v : n;
  }
}

const I64_MAX = 2n ** 63n - 1n;
const I64_MIN = -(2n ** 63n);
const U64_MAX = 2n ** 64n - 1n;

/**
 * A float as serde_json writes it in an error (the `zmij` crate): the
 * shortest digits that read back the same, plain from 1e-5 to below 1e16
 * (with `.0` when whole), else `d.ddde+N` / `de-N`.
 */
export function formatFloat(f: number): string {
  if (f === 0) return Object.is(f, -0) ? "-0.0" : "0.0";
  const sign = f < 0 ? "-" : "";
  const [mantissa = "", exp = "0"] = Math.abs(f).toExponential().split("e");
  const digits = mantissa.replace(".", "");
  const e = Number(exp);
  if (e >= -5 && e <= 15) {
    if (digits.length - 1 <= e) return `${sign}${digits}${"0".repeat(e + 1 - digits.length)}.0`;
    if (e >= 0) return `${sign}${digits.slice(0, e + 1)}.${digits.slice(e + 1)}`;
    return `${sign}0.${"0".repeat(-e - 1)}${digits}`;
  }
  const rest = digits.length > 1 ? `.${digits.slice(1)}` : "";
  return `${sign}${digits[0]}${rest}e${e >= 0 ? "+" : "-"}${Math.abs(e)}`;
}

/** Characters Rust's `{:?}` writes as `\u{…}`: not printable, or combining. */
const NOT_PRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Grapheme_Extend}]/u;
const SPACE_SEPARATOR = /\p{Zs}/u;

/** A string as Rust's `{:?}` writes it, as serde's `string "…"` does. */
export function rustDebug(s: string): string {
  let out = '"';
  for (const ch of s) {
    const escaped = DEBUG_ESCAPES[ch];
    if (escaped !== undefined) out += escaped;
    else if (NOT_PRINTABLE.test(ch) || (ch !== " " && SPACE_SEPARATOR.test(ch)))
      out += `\\u{${(ch.codePointAt(0) as number).toString(16)}}`;
    else out += ch;
  }
  return `${out}"`;
}

const DEBUG_ESCAPES: Record<string, string> = {
  '"': '\\"',
  "\\": "\\\\",
  "\n": "\\n",
  "\r": "\\r",
  "\t": "\\t",
  "\0": "\\0",
};

/**
 * Orders ids as SQLite orders TEXT (the bytes of their UTF-8), which is the
 * order of their code points: UTF-16 code units order the same except that
 * a surrogate pair (U+10000 and up) sorts before U+E000–U+FFFF.
 */
export function compareIds(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x - y;
  }
  return a.length - b.length;
}

/** Whether `tags` holds every key of `wanted` with exactly its value. */
function hasTags(tags: Record<string, string>, wanted: Record<string, string> | undefined): boolean {
  if (!wanted) return true;
  for (const key of Object.keys(wanted))
    if (!Object.hasOwn(tags, key) || tags[key] !== wanted[key]) return false;
  return true;
}

/** One page: at most `limit` of what matched, and the cursor for the next when more matched. */
function pageOf<T extends { id: string }>(
  matched: T[],
  limit: number,
): { page: T[]; cursor: string | undefined } {
  const page = matched.slice(0, limit);
  return { page, cursor: matched.length > limit ? page.at(-1)?.id : undefined };
}

/**
 * The first `count` in id order of `hot` (in memory, unsorted) and `cold`
 * (read from SQLite in id order, none of them in memory).
 */
function merge<T extends { id: string }>(hot: T[], cold: T[], count: number): T[] {
  hot.sort((a, b) => compareIds(a.id, b.id));
  const out: T[] = [];
  let i = 0;
  let j = 0;
  while (out.length < count && (i < hot.length || j < cold.length)) {
    const h = hot[i];
    const c = cold[j];
    if (h && (!c || compareIds(h.id, c.id) < 0)) {
      out.push(h);
      i++;
    } else if (c) {
      out.push(c);
      j++;
    }
  }
  return out;
}

/** Where a search reads: the engine's memory and, when it holds what left memory, SQLite. */
export interface SearchSource {
  engine: IndexedEngine;
  /** The SQLite tables, or undefined while they lag memory (a `debug.reset` not yet folded). */
  cold: ColdStore | undefined;
}

/** The `data` of a search's 200 answer. */
export function search(kind: string, query: SearchQuery, { engine, cold }: SearchSource): unknown {
  const after = query.cursor ?? "";
  const want = query.limit + 1;
  const isAfter = (id: string) => compareIds(id, after) > 0;
  if (kind === "promise.search") {
    const hot: EnginePromise[] = [];
    for (const p of engine.residentPromises())
      if (
        isAfter(p.id) &&
        (query.state === undefined || p.state === query.state) &&
        hasTags(p.tags, query.tags)
      )
        hot.push(p);
    const stored =
      cold?.searchPromises(after, query.state, query.tags && JSON.stringify(query.tags), want, (id) =>
        engine.isResidentPromise(id),
      ) ?? [];
    const { page, cursor } = pageOf(merge(hot, stored, want), query.limit);
    return { promises: page.map((p) => engine.promiseRecord(p)), ...(cursor !== undefined && { cursor }) };
  }
  if (kind === "task.search") {
    const hot: EngineTask[] = [];
    for (const t of engine.residentTasks())
      if (isAfter(t.id) && (query.state === undefined || t.state === query.state)) hot.push(t);
    const stored = cold?.searchTasks(after, query.state, want, (id) => engine.isResidentTask(id)) ?? [];
    const { page, cursor } = pageOf(merge(hot, stored, want), query.limit);
    return { tasks: page.map(taskRecord), ...(cursor !== undefined && { cursor }) };
  }
  // Schedules never leave memory.
  const hot: EngineSchedule[] = [];
  for (const s of engine.schedules.values())
    if (isAfter(s.id) && hasTags(s.promiseTags, query.tags)) hot.push(s);
  const { page, cursor } = pageOf(merge(hot, [], want), query.limit);
  return { schedules: page.map((s) => engine.scheduleRecord(s)), ...(cursor !== undefined && { cursor }) };
}

/**
 * A task as the real server's `task.get` and `task.search` show it:
 * `resumes` is how many awaited promises settled since it last ran (the
 * engine keeps their ids), and `ttl` and `pid` are there while it is acquired.
 */
function taskRecord(t: EngineTask): unknown {
  return {
    id: t.id,
    state: t.state,
    version: t.version,
    resumes: t.resumes.size,
    ...(t.ttl !== undefined && { ttl: t.ttl }),
    ...(t.pid !== undefined && { pid: t.pid }),
  };
}
