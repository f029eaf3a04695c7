/**
 * `promise.search`, `task.search` and `schedule.search` as the real Resonate
 * server v0.9.8 answers them: paging in the byte order of ids, the cursor,
 * the state and tags filters, `limit`, bad input, records that left our
 * server's memory, and tokens. Runs on either server:
 *
 *   bun test test/resonate-server/search.test.ts
 *   RESONATE_BIN=/path/to/resonate bun test test/resonate-server/search.test.ts
 */

import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  generateAuthKeys,
  PROTOCOL_VERSION,
  type ResonateServer,
  signToken,
  startResonateServer,
  waitFor,
} from "../../harness/index.ts";
import { openTables, SCHEMA_VERSION } from "../../harness/resonate-server/store.ts";
import { requireCapability } from "../support/capability.ts";
import { E2E_TIMEOUT, runId } from "../support/processes.ts";
import { tempDbPaths } from "../support/temp.ts";

interface Reply {
  status: number;
  body: { kind: string; head: { corrId: string; status: number; version: string }; data: unknown };
}

type Page<K extends string> = { [key in K]: Rec[] } & { cursor?: string };
type Rec = Record<string, unknown> & { id: string };

let corr = 0;
/** One protocol request with its body as given (so `10.0` stays `10.0`), and `auth` in the envelope when given. */
async function send(server: ResonateServer, kind: string, data: string, auth?: string): Promise<Reply> {
  const head = JSON.stringify({ corrId: `s-${++corr}`, version: PROTOCOL_VERSION, ...(auth && { auth }) });
  const res = await fetch(server.url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: `{"kind":${JSON.stringify(kind)},"head":${head},"data":${data}}`,
  });
  return { status: res.status, body: (await res.json()) as Reply["body"] };
}

const call = (server: ResonateServer, kind: string, data: object, auth?: string) =>
  send(server, kind, JSON.stringify(data), auth);

/** A call that must answer 200, and its data. */
async function ok<T = Record<string, unknown>>(
  server: ResonateServer,
  kind: string,
  data: object,
  auth?: string,
): Promise<T> {
  const reply = await call(server, kind, data, auth);
  if (reply.status !== 200)
    throw new Error(`${kind} ${JSON.stringify(data)}: ${reply.status} ${JSON.stringify(reply.body.data)}`);
  return reply.body.data as T;
}

/** The error answer both servers give, in whole. */
const refusal = (kind: string, corrId: string, status: number, message: string) => ({
  status,
  body: { kind, head: { corrId, status, version: PROTOCOL_VERSION }, data: message },
});

const FIELD = {
  "promise.search": "promises",
  "task.search": "tasks",
  "schedule.search": "schedules",
} as const;
type SearchKind = keyof typeof FIELD;

/**
 * Every page of a search from its start, checking each as it comes: a page
 * before the last is full and its cursor is its last id; the last has no cursor.
 */
async function pageAll(
  server: ResonateServer,
  kind: SearchKind,
  data: Record<string, unknown>,
  auth?: string,
): Promise<{ records: Rec[]; pages: number }> {
  const field = FIELD[kind];
  const records: Rec[] = [];
  let cursor: string | undefined;
  for (let pages = 1; pages < 1_000; pages++) {
    const page = await ok<Page<typeof field>>(
      server,
      kind,
      cursor === undefined ? data : { ...data, cursor },
      auth,
    );
    records.push(...page[field]);
    if (!("cursor" in page)) return { records, pages };
    if (typeof data.limit === "number") expect(page[field].length).toBe(data.limit);
    expect(page.cursor).toBe(page[field].at(-1)?.id as string);
    cursor = page.cursor;
  }
  throw new Error(`${kind}: more than 1000 pages`);
}

/** Ids in SQLite's order of TEXT: by the bytes of their UTF-8. */
const byteOrder = (ids: string[]) => ids.toSorted((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));

const HOUR = 3_600_000;
const promise = (id: string, tags: Record<string, string>, timeoutAt = Date.now() + HOUR) => ({
  id,
  timeoutAt,
  param: {},
  tags,
});
const TARGET = "poll://any@nobody";
const taskCreate = (id: string, tags: Record<string, string> = {}) => ({
  pid: "p1",
  ttl: 60_000,
  action: {
    kind: "promise.create",
    head: { corrId: "a", version: PROTOCOL_VERSION },
    data: promise(id, { "resonate:target": TARGET, ...tags }),
  },
});

/** The promise as `promise.get` answers it. */
const got = async (server: ResonateServer, id: string) =>
  (await ok<{ promise: Rec }>(server, "promise.get", { id })).promise;

describe("promise.search", () => {
  let server: ResonateServer;
  beforeAll(async () => {
    // Timeouts processed only at start and then once a minute, to see a search before the loop times one out.
    server = await startResonateServer({ tickMs: 60_000 });
  }, E2E_TIMEOUT);
  afterAll(() => server?.stop(), E2E_TIMEOUT);

  test(
    "pages through 250 promises in the byte order of their ids: each once, none missed, no cursor on the last page",
    async () => {
      const run = runId();
      // Upper and lower case, digits, punctuation, é, U+E000 and an emoji: UTF-16 order would put the emoji first.
      const tails = ["a", "B", "z", "Z", "0", "10", "9", "~", "-", ".", "é", "\u{E000}", "\u{1F600}"];
      const ids = Array.from({ length: 250 }, (_, i) => `page:${run}:${tails[i % tails.length]}${i}`);
      for (const id of ids.toSorted(() => Math.random() - 0.5))
        await ok(server, "promise.create", promise(id, { run }));

      const small = await pageAll(server, "promise.search", { tags: { run }, limit: 7 });
      expect(small.records.map((p) => p.id)).toEqual(byteOrder(ids));
      expect(small.pages).toBe(36);
      // Absent, the limit is 100.
      const large = await pageAll(server, "promise.search", { tags: { run } });
      expect(large.pages).toBe(3);
      expect(large.records).toEqual(small.records);
      // Each record is the one promise.get answers.
      expect(small.records[0]).toEqual(await got(server, small.records[0]?.id as string));
    },
    E2E_TIMEOUT,
  );

  test("a cursor is an id bound, any string: the results are the ids after it", async () => {
    const run = runId();
    const ids = ["b1", "b2", "c1", "c2", "d"].map((s) => `bound:${run}:${s}`);
    for (const id of ids) await ok(server, "promise.create", promise(id, { run }));
    const after = await ok<Page<"promises">>(server, "promise.search", {
      tags: { run },
      cursor: `bound:${run}:b9`,
    });
    expect(after.promises.map((p) => p.id)).toEqual(ids.slice(2));
    expect("cursor" in after).toBe(false);
    const none = await ok(server, "promise.search", { tags: { run }, cursor: `bound:${run}:e` });
    expect(none).toEqual({ promises: [] });
  });

  test("a search that ends on a full page: that page has no cursor, and no empty page follows", async () => {
    const run = runId();
    for (let i = 0; i < 6; i++) await ok(server, "promise.create", promise(`full:${run}:${i}`, { run }));
    const first = await ok<Page<"promises">>(server, "promise.search", { tags: { run }, limit: 3 });
    expect(first.cursor).toBe(`full:${run}:2`);
    const last = await ok<Page<"promises">>(server, "promise.search", {
      tags: { run },
      limit: 3,
      cursor: first.cursor,
    });
    expect(last.promises.map((p) => p.id)).toEqual([3, 4, 5].map((i) => `full:${run}:${i}`));
    expect("cursor" in last).toBe(false);
    const whole = await ok<Page<"promises">>(server, "promise.search", { tags: { run }, limit: 6 });
    expect(whole.promises).toHaveLength(6);
    expect("cursor" in whole).toBe(false);
  });

  test("state filters by each of the five states, and each record is the one promise.get answers", async () => {
    const run = runId();
    const id = (s: string) => `state:${run}:${s}`;
    await ok(server, "promise.create", promise(id("pending"), { run }));
    for (const state of ["resolved", "rejected", "rejected_canceled"]) {
      await ok(server, "promise.create", promise(id(state), { run }));
      await ok(server, "promise.settle", { id: id(state), state, value: { data: "eA==" } });
    }
    // Created past their timeout: timed out at once, a timer resolved.
    await ok(server, "promise.create", promise(id("timedout"), { run }, 1_000));
    await ok(server, "promise.create", promise(id("timer"), { run, "resonate:timer": "true" }, 1_000));
    const expected: Record<string, string[]> = {
      pending: [id("pending")],
      resolved: [id("resolved"), id("timer")],
      rejected: [id("rejected")],
      rejected_canceled: [id("rejected_canceled")],
      rejected_timedout: [id("timedout")],
    };
    for (const [state, ids] of Object.entries(expected)) {
      const page = await ok<Page<"promises">>(server, "promise.search", { state, tags: { run } });
      expect(page).toEqual({ promises: await Promise.all(ids.map((i) => got(server, i))) });
    }
  });

  test("a promise past its timeout is pending to a search until the timeout loop or a read of it times it out", async () => {
    const run = runId();
    const id = `late:${run}`;
    const timeoutAt = Date.now() + 300;
    await ok(server, "promise.create", promise(id, { run }, timeoutAt));
    await waitFor(() => Date.now() > timeoutAt + 20, { timeout: 5_000, message: "the timeout to pass" });
    const before = await ok<Page<"promises">>(server, "promise.search", { tags: { run } });
    expect(before.promises.map((p) => [p.state, p.settledAt])).toEqual([["pending", undefined]]);
    expect(
      (await ok<Page<"promises">>(server, "promise.search", { tags: { run }, state: "pending" })).promises,
    ).toHaveLength(1);

    const read = await got(server, id);
    expect(read).toMatchObject({ state: "rejected_timedout", settledAt: timeoutAt });
    expect(await ok(server, "promise.search", { tags: { run } })).toEqual({ promises: [read] });
    expect(await ok(server, "promise.search", { tags: { run }, state: "pending" })).toEqual({ promises: [] });
  });

  test("tags match when every given key has exactly the given value", async () => {
    const run = runId();
    const id = (s: string) => `tags:${run}:${s}`;
    const made: [string, Record<string, string>][] = [
      [id("ab"), { run, a: "1", b: "2" }],
      [id("a"), { run, a: "1" }],
      [id("a10"), { run, a: "10" }],
      [id("A"), { run, A: "1" }],
      [id("empty"), { run, a: "" }],
    ];
    for (const [i, tags] of made) await ok(server, "promise.create", promise(i, tags));
    const found = async (tags: Record<string, string>) =>
      (await ok<Page<"promises">>(server, "promise.search", { tags })).promises.map((p) => p.id);
    expect(await found({ run })).toEqual(byteOrder(made.map(([i]) => i)));
    expect(await found({ run, a: "1" })).toEqual([id("a"), id("ab")]);
    expect(await found({ run, a: "1", b: "2" })).toEqual([id("ab")]);
    expect(await found({ run, a: "" })).toEqual([id("empty")]);
    expect(await found({ run, b: "2", c: "3" })).toEqual([]);
    expect(await found({ run, a: "1 " })).toEqual([]);
  });

  test("limit: 1 and 1000 are taken; 0, -1 and 1001 are refused with the real server's messages", async () => {
    const run = runId();
    for (let i = 0; i < 3; i++) await ok(server, "promise.create", promise(`limit:${run}:${i}`, { run }));
    const one = await ok<Page<"promises">>(server, "promise.search", { tags: { run }, limit: 1 });
    expect([one.promises.length, one.cursor]).toEqual([1, `limit:${run}:0`]);
    expect(
      (await ok<Page<"promises">>(server, "promise.search", { tags: { run }, limit: 1000 })).promises,
    ).toHaveLength(3);
    for (const [limit, message] of [
      [0, "Limit must be a positive integer"],
      [-1, "Limit must be a positive integer"],
      [1001, "Invalid 'limit' — must be between 1 and 1000"],
    ] as const) {
      const reply = await call(server, "promise.search", { limit });
      expect(reply).toEqual(refusal("promise.search", reply.body.head.corrId, 400, message));
    }
  });

  const STATES = "`pending`, `resolved`, `rejected`, `rejected_canceled`, `rejected_timedout`";
  test.each([
    ['{"state":"bogus"}', `Invalid request: unknown variant \`bogus\`, expected one of ${STATES}`],
    ['{"state":"Pending"}', `Invalid request: unknown variant \`Pending\`, expected one of ${STATES}`],
    ['{"state":5}', "Invalid request: invalid type: integer `5`, expected string or map"],
    ['{"state":{"a":1,"b":2}}', "Invalid request: invalid value: map, expected map with a single key"],
    ['{"limit":"5"}', 'Invalid request: invalid type: string "5", expected i64'],
    ['{"limit":10.0}', "Invalid request: invalid type: floating point `10.0`, expected i64"],
    ['{"limit":1e3}', "Invalid request: invalid type: floating point `1000.0`, expected i64"],
    ['{"limit":1.5}', "Invalid request: invalid type: floating point `1.5`, expected i64"],
    ['{"limit":1e16}', "Invalid request: invalid type: floating point `1e+16`, expected i64"],
    ['{"limit":-0}', "Invalid request: invalid type: floating point `-0.0`, expected i64"],
    [
      '{"limit":9223372036854775808}',
      "Invalid request: invalid value: integer `9223372036854775808`, expected i64",
    ],
    ['{"limit":9223372036854775807}', "Invalid 'limit' — must be between 1 and 1000"],
    ['{"limit":true}', "Invalid request: invalid type: boolean `true`, expected i64"],
    ['{"cursor":5}', "Invalid request: invalid type: integer `5`, expected a string"],
    ['{"cursor":{}}', "Invalid request: invalid type: map, expected a string"],
    ['{"tags":[]}', "Invalid request: invalid type: sequence, expected a map"],
    ['{"tags":{"a":null}}', "Invalid request: invalid type: null, expected a string"],
    // Fields are read in key order, each map's entries too: the cursor before the limit, `a` before `b`.
    ['{"limit":"x","cursor":2}', "Invalid request: invalid type: integer `2`, expected a string"],
    ['{"tags":{"b":1,"a":true}}', "Invalid request: invalid type: boolean `true`, expected a string"],
    // A field's type is read before any limit is checked.
    ['{"limit":0,"state":"x"}', `Invalid request: unknown variant \`x\`, expected one of ${STATES}`],
    ['{"limit":"a\\tb\\u0001\\"c"}', 'Invalid request: invalid type: string "a\\tb\\u{1}\\"c", expected i64'],
  ])("refuses %s with 400 and the real server's message", async (data, message) => {
    const reply = await send(server, "promise.search", data);
    expect(reply).toEqual(refusal("promise.search", reply.body.head.corrId, 400, message));
  });

  test("unknown fields are ignored, null is the same as absent, and a state can be given as {name: null}", async () => {
    const run = runId();
    await ok(server, "promise.create", promise(`null:${run}`, { run }));
    const expected = await ok(server, "promise.search", { tags: { run } });
    expect(expected).toEqual({ promises: [await got(server, `null:${run}`)] });
    expect(
      await ok(server, "promise.search", { tags: { run }, state: null, limit: null, cursor: null, foo: [1] }),
    ).toEqual(expected);
    expect(await ok(server, "promise.search", { tags: { run }, state: { pending: null } })).toEqual(expected);
  });

  test("a number too large for a double fails the whole envelope", async () => {
    const reply = await send(server, "promise.search", '{"limit":1e400}');
    expect(reply.status).toBe(400);
    expect(reply.body.kind).toBe("unknown");
    expect(reply.body.data).toStartWith("Invalid request envelope: number out of range");
  });
});

describe("task.search", () => {
  let server: ResonateServer;
  beforeAll(async () => {
    server = await startResonateServer();
  }, E2E_TIMEOUT);
  afterAll(() => server?.stop(), E2E_TIMEOUT);

  /** This test's tasks, all the pages of a search that starts at its prefix. */
  async function tasksOf(prefix: string, data: Record<string, unknown> = {}) {
    const { records, pages } = await pageAll(server, "task.search", { cursor: prefix, ...data });
    return { tasks: records.filter((t) => t.id.startsWith(prefix)), pages };
  }

  test("pages through 120 tasks in id order: each once, none missed; 100 to a page by default", async () => {
    const prefix = `tpage:${runId()}:`;
    const ids = Array.from({ length: 120 }, (_, i) => `${prefix}${(i * 7919) % 1000}`);
    for (const id of ids) await ok(server, "promise.create", promise(id, { "resonate:target": TARGET }));
    const small = await tasksOf(prefix, { limit: 9 });
    expect(small.tasks.map((t) => t.id)).toEqual(byteOrder(ids));
    const first = await ok<Page<"tasks">>(server, "task.search", { cursor: prefix });
    expect(first.tasks.map((t) => t.id)).toEqual(byteOrder(ids).slice(0, 100));
    expect(first.cursor).toBe(byteOrder(ids)[99] as string);
  });

  test("state filters by each of the five states; a task shows as the real server's task.get shows it", async () => {
    const prefix = `tstate:${runId()}:`;
    const id = (s: string) => `${prefix}${s}`;
    await ok(server, "promise.create", promise(id("pending"), { "resonate:target": TARGET }));
    await ok(server, "task.create", taskCreate(id("acquired")));
    await ok(server, "task.create", taskCreate(id("fulfilled")));
    await ok(server, "task.fulfill", {
      id: id("fulfilled"),
      version: 1,
      action: {
        kind: "promise.settle",
        head: { corrId: "a", version: PROTOCOL_VERSION },
        data: { id: id("fulfilled"), state: "resolved", value: {} },
      },
    });
    for (const s of ["suspended", "resumed"]) {
      await ok(server, "task.create", taskCreate(id(s)));
      for (const i of [1, 2]) await ok(server, "promise.create", promise(id(`${s}.${i}`), {}));
      await ok(server, "task.suspend", {
        id: id(s),
        version: 1,
        actions: [1, 2].map((i) => ({
          kind: "promise.register_callback",
          head: { corrId: "a", version: PROTOCOL_VERSION },
          data: { awaited: id(`${s}.${i}`), awaiter: id(s) },
        })),
      });
    }
    // Both awaited promises settle: the task is pending again, with two resumes.
    for (const i of [1, 2])
      await ok(server, "promise.settle", { id: id(`resumed.${i}`), state: "resolved", value: {} });
    await ok(server, "task.create", taskCreate(id("halted")));
    await ok(server, "task.halt", { id: id("halted") });

    const expected: Record<string, Rec[]> = {
      pending: [
        { id: id("pending"), state: "pending", version: 0, resumes: 0 },
        { id: id("resumed"), state: "pending", version: 1, resumes: 2 },
      ],
      acquired: [{ id: id("acquired"), state: "acquired", version: 1, resumes: 0, ttl: 60_000, pid: "p1" }],
      suspended: [{ id: id("suspended"), state: "suspended", version: 1, resumes: 0 }],
      halted: [{ id: id("halted"), state: "halted", version: 1, resumes: 0 }],
      fulfilled: [{ id: id("fulfilled"), state: "fulfilled", version: 1, resumes: 0 }],
    };
    for (const [state, tasks] of Object.entries(expected))
      expect((await tasksOf(prefix, { state })).tasks).toEqual(tasks);
    expect((await tasksOf(prefix)).tasks).toEqual(
      Object.values(expected)
        .flat()
        .toSorted((a, b) => (a.id < b.id ? -1 : 1)),
    );
  });

  test("has no tags filter (ignored, as unknown fields are) and refuses a promise's state", async () => {
    const prefix = `ttags:${runId()}:`;
    await ok(server, "promise.create", promise(`${prefix}1`, { "resonate:target": TARGET, only: "this" }));
    expect((await tasksOf(prefix, { tags: { only: "that" } })).tasks.map((t) => t.id)).toEqual([
      `${prefix}1`,
    ]);
    const reply = await call(server, "task.search", { state: "resolved" });
    expect(reply).toEqual(
      refusal(
        "task.search",
        reply.body.head.corrId,
        400,
        "Invalid request: unknown variant `resolved`, expected one of `pending`, `acquired`, `suspended`, `halted`, `fulfilled`",
      ),
    );
    for (const [limit, message] of [
      [0, "Limit must be a positive integer"],
      [1001, "Invalid 'limit' — must be between 1 and 1000"],
    ] as const) {
      const bad = await call(server, "task.search", { limit });
      expect(bad).toEqual(refusal("task.search", bad.body.head.corrId, 400, message));
    }
  });
});

describe("schedule.search", () => {
  let server: ResonateServer;
  beforeAll(async () => {
    server = await startResonateServer();
  }, E2E_TIMEOUT);
  afterAll(() => server?.stop(), E2E_TIMEOUT);

  test("10 to a page by default; tags filter the promise tags; a state is ignored", async () => {
    const run = runId();
    const ids = Array.from({ length: 12 }, (_, i) => `${run}-${String(i).padStart(2, "0")}`);
    for (const [i, id] of ids.entries())
      await ok(server, "schedule.create", {
        id,
        cron: "0 0 1 1 *",
        promiseId: `${id}.{{.timestamp}}`,
        promiseTimeout: 60_000,
        promiseParam: {},
        promiseTags: { run, n: String(i % 3), "resonate:target": TARGET },
      });
    const first = await ok<Page<"schedules">>(server, "schedule.search", { tags: { run } });
    expect(first.schedules.map((s) => s.id)).toEqual(ids.slice(0, 10));
    expect(first.cursor).toBe(ids[9] as string);
    const all = await pageAll(server, "schedule.search", { tags: { run }, limit: 5, state: "bogus" });
    expect(all.records.map((s) => s.id)).toEqual(ids);
    expect(all.records[0]).toEqual(
      (await ok<{ schedule: Rec }>(server, "schedule.get", { id: ids[0] as string })).schedule,
    );
    const ones = await ok<Page<"schedules">>(server, "schedule.search", { tags: { run, n: "1" } });
    expect(ones.schedules.map((s) => s.id)).toEqual([1, 4, 7, 10].map((i) => ids[i] as string));
    const bad = await call(server, "schedule.search", { tags: { n: 1 } });
    expect(bad).toEqual(
      refusal(
        "schedule.search",
        bad.body.head.corrId,
        400,
        "Invalid request: invalid type: integer `1`, expected a string",
      ),
    );
  });
});

describe("search over records that left memory, and after a restart", () => {
  /** What our server holds in memory (`/healthz`). */
  const resident = async (server: ResonateServer) =>
    (
      (await (await fetch(`${server.url}/healthz`)).json()) as {
        resident: { promises: number; tasks: number };
      }
    ).resident;

  requireCapability("commitLog")(
    "pages over promises and tasks in SQLite and in memory alike, and reads none of them back",
    async () => {
      // Segments of 4 KiB are sealed and folded every few commits, and settled records then leave memory.
      await using server = await startResonateServer({ segmentBytes: 4096, tickMs: 50 });
      const run = runId();
      const ids = Array.from({ length: 300 }, (_, i) => `evict:${run}:${String(i).padStart(3, "0")}`);
      const settled = ids.filter((_, i) => i % 3 !== 0);
      for (const id of ids) await ok(server, "promise.create", promise(id, { run }));
      for (const id of settled) await ok(server, "promise.settle", { id, state: "resolved", value: {} });
      const tasks = Array.from({ length: 40 }, (_, i) => `evict:${run}:t${i}`);
      for (const id of tasks) {
        await ok(server, "task.create", taskCreate(id, { run }));
        await ok(server, "task.fulfill", {
          id,
          version: 1,
          action: {
            kind: "promise.settle",
            head: { corrId: "a", version: PROTOCOL_VERSION },
            data: { id, state: "resolved", value: {} },
          },
        });
      }
      // The 100 pending promises stay; nearly all the rest leave (the active segment's stay until it is folded).
      await waitFor(async () => (await resident(server)).promises <= 100 + 20, {
        timeout: 15_000,
        message: "settled promises to leave memory",
      });
      const held = await resident(server);

      const all = await pageAll(server, "promise.search", { tags: { run }, limit: 13 });
      expect(all.records.map((p) => p.id)).toEqual(byteOrder([...ids, ...tasks]));
      const resolved = await pageAll(server, "promise.search", {
        tags: { run },
        state: "resolved",
        limit: 11,
      });
      expect(resolved.records.map((p) => p.id)).toEqual(byteOrder([...settled, ...tasks]));
      const pending = await pageAll(server, "promise.search", { tags: { run }, state: "pending", limit: 17 });
      expect(pending.records.map((p) => p.id)).toEqual(ids.filter((_, i) => i % 3 === 0));
      const fulfilled = await pageAll(server, "task.search", {
        cursor: `evict:${run}:`,
        state: "fulfilled",
        limit: 7,
      });
      expect(fulfilled.records.map((t) => t.id)).toEqual(byteOrder(tasks));
      // A search reads records from SQLite without taking them back into memory.
      expect((await resident(server)).promises).toBeLessThanOrEqual(held.promises);
      // And each is the record promise.get reads back.
      expect(all.records.find((p) => p.id === settled[0])).toEqual(await got(server, settled[0] as string));
    },
    E2E_TIMEOUT,
  );

  test(
    "a restart keeps what a search finds, page for page",
    async () => {
      await using server = await startResonateServer();
      const run = runId();
      for (let i = 0; i < 30; i++) {
        const id = `restart:${run}:${i}`;
        await ok(server, "promise.create", promise(id, { run }));
        if (i % 2) await ok(server, "promise.settle", { id, state: "rejected", value: {} });
      }
      const before = await pageAll(server, "promise.search", { tags: { run }, limit: 4 });
      await server.restart();
      expect(await pageAll(server, "promise.search", { tags: { run }, limit: 4 })).toEqual(before);
    },
    E2E_TIMEOUT,
  );
});

describe("our state file's indexes for searches by state", () => {
  const dbPath = tempDbPaths("search-layout-");

  requireCapability("commitLog")(
    "a file of layout 1 gains them when it is opened, and keeps its rows",
    () => {
      const path = dbPath();
      const record = JSON.stringify({ id: "p", state: "resolved", tags: {} });
      const raw = new Database(path, { create: true });
      raw.exec(`PRAGMA journal_mode = WAL;
      CREATE TABLE promises (id TEXT PRIMARY KEY, record TEXT NOT NULL);
      CREATE TABLE tasks (id TEXT PRIMARY KEY, record TEXT NOT NULL);
      INSERT INTO promises VALUES ('p', '${record}');
      PRAGMA user_version = 1;`);
      raw.close();
      openTables(path).close();
      const db = new Database(path, { readonly: true });
      try {
        const names = db
          .query<{ name: string }, []>(
            "SELECT name FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL ORDER BY name",
          )
          .all()
          .map((row) => row.name);
        expect(names).toEqual(["promises_state", "tasks_state"]);
        expect(db.query("PRAGMA user_version").get()).toEqual({ user_version: SCHEMA_VERSION });
        expect(db.query("SELECT id, record FROM promises").all()).toEqual([{ id: "p", record }]);
      } finally {
        db.close();
      }
    },
  );
});

describe("search with tokens (--auth-publickey)", () => {
  const keys = generateAuthKeys("ES256");
  let server: ResonateServer;
  beforeAll(async () => {
    server = await startResonateServer({ auth: { publicKeyPem: keys.publicKeyPem } });
  }, E2E_TIMEOUT);
  afterAll(() => server?.stop(), E2E_TIMEOUT);

  const KINDS: SearchKind[] = ["promise.search", "task.search", "schedule.search"];

  test("an admin token searches everything, and pages", async () => {
    const admin = await signToken(keys, { role: "admin" });
    const run = runId();
    for (let i = 0; i < 5; i++)
      await ok(server, "promise.create", promise(`job:${run}:${i}`, { run }), admin);
    const all = await pageAll(server, "promise.search", { tags: { run }, limit: 2 }, admin);
    expect(all.records.map((p) => p.id)).toEqual([0, 1, 2, 3, 4].map((i) => `job:${run}:${i}`));
    for (const kind of KINDS) expect((await call(server, kind, {}, admin)).status).toBe(200);
    // With a good token, bad input gets its own answer.
    const bad = await call(server, "promise.search", { limit: 0 }, admin);
    expect(bad).toEqual(
      refusal("promise.search", bad.body.head.corrId, 400, "Limit must be a positive integer"),
    );
  });

  test("a prefix-scoped token is forbidden every search, whatever the prefix, the tags or the data", async () => {
    const scoped = await signToken(keys, { role: "user", prefix: "job:" });
    const noPrefix = await signToken(keys, { role: "user" });
    // The same token may still read its own ids.
    await ok(server, "promise.create", promise(`job:${runId()}`, {}), scoped);
    for (const kind of KINDS)
      for (const [token, data] of [
        [scoped, {}],
        [scoped, { tags: { "resonate:prefix": "job:" }, cursor: "job:" }],
        // Refused before the data is read.
        [scoped, { limit: 0 }],
        [noPrefix, {}],
      ] as const) {
        const reply = await call(server, kind, data, token);
        expect(reply).toEqual(refusal(kind, reply.body.head.corrId, 403, "Forbidden"));
      }
  });

  test("a token with an empty prefix searches everything; no token or a bad one is 401", async () => {
    const everything = await signToken(keys, { role: "user", prefix: "" });
    const other = await signToken(generateAuthKeys("ES256"), { role: "admin" });
    for (const kind of KINDS) {
      expect((await call(server, kind, {}, everything)).status).toBe(200);
      for (const token of [undefined, other, "not-a-jwt"]) {
        const reply = await call(server, kind, { limit: 0 }, token);
        expect(reply).toEqual(refusal(kind, reply.body.head.corrId, 401, "Unauthorized"));
      }
    }
  });
});
