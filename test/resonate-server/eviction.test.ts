import { describe, expect, test } from "bun:test";
import { protocolCall, startResonateServer, waitFor } from "../../harness/index.ts";
import { IndexedEngine } from "../../harness/resonate-server/engine.ts";
import type { EnginePromise } from "../../harness/resonate-server/engine-types.ts";
import { ProtocolServer, SERVER_DEFAULTS } from "../../harness/resonate-server/server.ts";
import { PROTOCOL_VERSION } from "../../harness/resonate-server/validate.ts";
import { requireCapability } from "../support/capability.ts";
import {
  clientResult,
  E2E_TIMEOUT,
  runId,
  startClientFixture,
  startWorkerFixture,
} from "../support/processes.ts";
import { tempDbPaths } from "../support/temp.ts";

const dbPath = tempDbPaths("eviction-");

type Reply = { status: number; body: { data: { promise?: EnginePromise & { state: string } } } };

/** A protocol server in this process, with segments small enough to be sealed and folded every few commits. */
function open(path: string): ProtocolServer & AsyncDisposable {
  const fatal: unknown[] = [];
  const server = new ProtocolServer({
    ...SERVER_DEFAULTS,
    dbPath: path,
    segmentBytes: 4096,
    debug: true,
    onFatal: (error) => fatal.push(error),
  });
  return Object.assign(server, {
    [Symbol.asyncDispose]: async () => {
      await server.stop();
      expect(fatal).toEqual([]);
    },
  });
}

async function call(server: ProtocolServer, kind: string, data: unknown): Promise<Reply> {
  const raw = JSON.stringify({ kind, head: { corrId: "c", version: PROTOCOL_VERSION }, data });
  return (await server.handle(raw)) as Reply;
}

/** `debug.snap`'s promises, in id order: those read back from SQLite come after the ones in memory. */
async function snapshot(server: ProtocolServer) {
  const snap = (await call(server, "debug.snap", {})).body.data as unknown as { promises: { id: string }[] };
  return { ...snap, promises: snap.promises.toSorted((a, b) => a.id.localeCompare(b.id)) };
}

const HOUR = 3_600_000;
const value = (i: number) => ({ headers: {}, data: Buffer.from(JSON.stringify({ i })).toString("base64") });

function create(server: ProtocolServer, id: string, branch = id) {
  return call(server, "promise.create", {
    id,
    timeoutAt: Date.now() + HOUR,
    param: { headers: {}, data: "" },
    tags: { "resonate:branch": branch },
  });
}

async function createSettled(server: ProtocolServer, ids: string[]): Promise<void> {
  for (const [i, id] of ids.entries()) {
    await create(server, id);
    await call(server, "promise.settle", { id, state: "resolved", value: value(i) });
  }
}

/** Waits (checking on each timeout tick) until at most `most` promises are held in memory. */
function residentAtMost(server: ProtocolServer, most: number) {
  return waitFor(
    () => {
      server.tick(Date.now());
      return server.resident.promises <= most;
    },
    { timeout: 10_000, message: `at most ${most} promises in memory (${server.resident.promises})` },
  );
}

describe("resonate server: settled promises leave memory once folded and read back the same", () => {
  test("a settled promise leaves memory, and get, create and snap answer as before", async () => {
    await using server = open(dbPath());
    const ids = Array.from({ length: 120 }, (_, i) => `p${i}`);
    await createSettled(server, ids);
    const gets = await Promise.all(ids.map((id) => call(server, "promise.get", { id })));
    const again = await create(server, "p0");
    const snap = await snapshot(server);
    expect(gets.every((g) => g.status === 200 && g.body.data.promise?.state === "resolved")).toBe(true);

    // Only the active segment's promises stay: the rest are folded and done with.
    await residentAtMost(server, 12);
    expect(server.resident.tasks).toBe(0);

    expect(await Promise.all(ids.map((id) => call(server, "promise.get", { id })))).toEqual(gets);
    expect(await create(server, "p0")).toEqual(again);
    expect(await snapshot(server)).toEqual(snap);
    // What was read back leaves memory again.
    await residentAtMost(server, 12);
    expect((await call(server, "promise.get", { id: "nope" })).status).toBe(404);
  });

  test("a branch stays in memory while one of its promises is pending, and leaves once it settles", async () => {
    await using server = open(dbPath());
    await create(server, "root");
    for (let i = 1; i <= 5; i++) {
      await create(server, `root.${i}`, "root");
      await call(server, "promise.settle", { id: `root.${i}`, state: "resolved", value: value(i) });
    }
    await createSettled(
      server,
      Array.from({ length: 60 }, (_, i) => `filler${i}`),
    );
    await residentAtMost(server, 6 + 12);
    const held = server.resident.promises;
    expect(held).toBeGreaterThanOrEqual(6);

    await call(server, "promise.settle", { id: "root", state: "resolved", value: value(0) });
    await createSettled(
      server,
      Array.from({ length: 60 }, (_, i) => `more${i}`),
    );
    await residentAtMost(server, 12);
    expect((await call(server, "promise.get", { id: "root.3" })).body.data.promise?.state).toBe("resolved");
  });

  test("a restart holds only the promises still in play", async () => {
    const path = dbPath();
    {
      await using server = open(path);
      await createSettled(
        server,
        Array.from({ length: 40 }, (_, i) => `done${i}`),
      );
      await create(server, "open1");
      await create(server, "open2");
    }
    await using server = open(path);
    expect(server.resident).toEqual({ promises: 2, tasks: 0 });
    expect((await call(server, "promise.get", { id: "done7" })).body.data.promise?.value).toEqual(value(7));
    expect((await call(server, "promise.get", { id: "open2" })).body.data.promise?.state).toBe("pending");
  });

  test("debug.reset forgets the promises that left memory too, before and after its fold", async () => {
    await using server = open(dbPath());
    const ids = Array.from({ length: 60 }, (_, i) => `gone${i}`);
    await createSettled(server, ids);
    await residentAtMost(server, 12);
    // A read in the same turn as the reset, before the reset is even written, finds nothing either.
    const [, sameTurn] = await Promise.all([
      call(server, "debug.reset", {}),
      call(server, "promise.get", { id: "gone1" }),
    ]);
    expect(sameTurn.status).toBe(404);
    expect((await call(server, "promise.get", { id: "gone0" })).status).toBe(404);
    await createSettled(
      server,
      Array.from({ length: 60 }, (_, i) => `after${i}`),
    );
    await residentAtMost(server, 12);
    for (const id of ["gone0", "gone59"])
      expect((await call(server, "promise.get", { id })).status).toBe(404);
    expect((await call(server, "promise.get", { id: "after0" })).status).toBe(200);
  });
});

describe("IndexedEngine.evictBranch", () => {
  const engine = new IndexedEngine();
  const apply = (kind: string, data: unknown) =>
    engine.apply(1_000, { kind, head: { corrId: "c", version: PROTOCOL_VERSION }, data } as never);
  const make = (id: string, branch: string) =>
    apply("promise.create", { id, timeoutAt: HOUR, param: {}, tags: { "resonate:branch": branch } });
  const settle = (id: string) => apply("promise.settle", { id, state: "resolved", value: {} });

  test("keeps a busy branch, waits for the disk, then drops the whole branch and reads it back", () => {
    make("r", "r");
    make("r.1", "r");
    settle("r.1");
    expect(engine.evictBranch("r", () => true)).toBe("busy");
    settle("r");
    expect(engine.evictBranch("r", (id) => id !== "r.1")).toBe("later");
    expect(engine.resident.promises).toBe(2);
    const saved = new Map([...engine.promises].map(([id, p]) => [id, structuredClone(p)]));
    expect(engine.evictBranch("r", () => true)).toEqual(["r", "r.1"]);
    expect(engine.resident.promises).toBe(0);
    expect(engine.promises.get("r")).toBeUndefined();

    engine.cold = { promise: (id) => structuredClone(saved.get(id)), task: () => undefined };
    expect(engine.promises.get("r.1")).toEqual(saved.get("r.1") as EnginePromise);
    expect(engine.resident.promises).toBe(1);
  });
});

describe("resonate server: workflows over small segments", () => {
  // Needs our commit log (segments, eviction) and /healthz's resident count.
  requireCapability("commitLog")(
    "results stay right and the same id answers the same after its promises left memory",
    async () => {
      await using server = await startResonateServer({ segmentBytes: 4096 });
      await using _worker = await startWorkerFixture(server, { group: "workers", pid: "w1" });
      const run = async (id: string, args: number[]) => {
        await using client = startClientFixture(server, { id, func: "combine", target: "workers", args });
        await waitFor(() => clientResult(client), { timeout: 15_000, message: `${id} result` });
        return clientResult(client);
      };
      const first = `combine:${runId()}`;
      expect(await run(first, [3, 4])).toBe(38);
      for (let i = 0; i < 3; i++) expect(await run(`combine:${runId()}-${i}`, [i, 1])).toBe(10 * i + 2);
      const health = async () =>
        (await (await fetch(`${server.url}/healthz`)).json()) as { resident: { promises: number } };
      await waitFor(async () => (await health()).resident.promises <= 4, {
        timeout: 15_000,
        message: "settled workflows left memory",
      });
      expect(await run(first, [3, 4])).toBe(38);
      const child = await protocolCall<{ promise: { state: string } }>(server.url, "promise.get", {
        id: `${first}.1`,
      });
      expect(child.body.data.promise.state).toBe("resolved");
      // A task read back brings its promise with it, and both leave memory again.
      const task = await protocolCall<{ task: { state: string } }>(server.url, "task.get", { id: first });
      expect(task.body.data.task.state).toBe("fulfilled");
      await waitFor(async () => (await health()).resident.promises <= 4, {
        timeout: 15_000,
        message: "what was read back left memory again",
      });
    },
    E2E_TIMEOUT,
  );
});
