import { describe, expect, test } from "bun:test";
import type { Context, Message, Network, Request, Response } from "@resonatehq/sdk";
import { resonateClient } from "../../core/resonate/network.ts";
import { PROTOCOL_VERSION } from "../../core/resonate/search.ts";
import { HeartbeatingNetwork, originOf } from "../../core/resonate/task-leases.ts";

const VERSION = PROTOCOL_VERSION;
const head = (corrId = "c") => ({ corrId, version: VERSION });

type Answer = (req: Request) => Response | Promise<Response>;

/** A network that records what reaches it and answers with `answer` (200 with empty data by default). */
class RecordingNetwork implements Network {
  readonly unicast = "poll://uni@g/p1";
  readonly anycast = "poll://any@g/p1";
  readonly sent: Request[] = [];
  answer: Answer = (req) => reply(req, 200, {});
  match = (target: string) => `poll://any@${target}`;
  init = async () => {};
  stop = async () => {};
  recv(_callback: (msg: Message) => void): void {}
  send = (async (req: Request) => {
    this.sent.push(req);
    return this.answer(req);
  }) as Network["send"];
}

function reply(req: Request, status: number, data: unknown): Response {
  return { kind: req.kind, head: { corrId: req.head.corrId, status, version: VERSION }, data } as Response;
}

const taskRecord = (
  id: string,
  version: number,
  pid = "p1",
  state = "acquired",
  timeoutAt = Date.now() + 60_000,
) => ({
  task: { id, state, version, pid, ttl: 1_000, resumes: 0 },
  promise: { id, timeoutAt },
  preload: [],
});

function setup() {
  const inner = new RecordingNetwork();
  const network = new HeartbeatingNetwork(inner, "p1");
  const send = (req: unknown) => network.send(req as Parameters<Network["send"]>[0]);
  const acquire = async (id: string, version: number, pid = "p1", timeoutAt?: number) => {
    inner.answer = (req) => reply(req, 200, taskRecord(id, version + 1, pid, "acquired", timeoutAt));
    await send({ kind: "task.acquire", head: head(), data: { id, version, pid, ttl: 1_000 } });
  };
  const answerWith = (status: number, data: unknown = {}) => {
    inner.answer = (req) => reply(req, status, data);
  };
  /** What the wrapper sends for one SDK heartbeat, and what it answers the SDK. */
  const beat = async () => {
    const from = inner.sent.length;
    answerWith(200);
    const res = await send({
      kind: "task.heartbeat",
      head: head("sdk-beat"),
      data: { pid: "p1", tasks: [] },
    });
    return { res, sent: inner.sent.slice(from) };
  };
  return { inner, network, send, acquire, answerWith, beat };
}

describe("HeartbeatingNetwork: the SDK's heartbeats name the tasks this process holds", () => {
  test("holding nothing, an SDK heartbeat sends nothing and the SDK gets a 200 for its own request", async () => {
    const { beat } = setup();
    const { res, sent } = await beat();
    expect(sent).toEqual([]);
    expect(res).toEqual({
      kind: "task.heartbeat",
      head: { corrId: "sdk-beat", status: 200, version: VERSION },
      data: {},
    });
  });

  test("a task acquired by this pid is heartbeated at the version the server gave it", async () => {
    const { acquire, beat } = setup();
    await acquire("order:1", 0);
    const { sent } = await beat();
    expect(sent.map((r) => r.data)).toEqual([{ pid: "p1", tasks: [{ id: "order:1", version: 1 }] }]);
    expect(sent[0]?.kind).toBe("task.heartbeat");
  });

  test("tasks of two origins get one heartbeat each; a task and its children share one", async () => {
    const { acquire, beat } = setup();
    await acquire("a", 0);
    await acquire("b.1", 2);
    await acquire("a.1.2", 4);
    const { sent } = await beat();
    expect(sent.map((r) => r.data)).toEqual([
      {
        pid: "p1",
        tasks: [
          { id: "a", version: 1 },
          { id: "a.1.2", version: 5 },
        ],
      },
      { pid: "p1", tasks: [{ id: "b.1", version: 3 }] },
    ]);
    expect(new Set(sent.map((r) => r.head.corrId)).size).toBe(2);
  });

  test("task.create that answers the task acquired by this pid holds it; an already fulfilled one does not", async () => {
    const { inner, send, beat } = setup();
    const create = (id: string) =>
      send({ kind: "task.create", head: head(), data: { pid: "p1", ttl: 1_000, action: { data: { id } } } });
    inner.answer = (req) => reply(req, 200, taskRecord("run:1", 1));
    await create("run:1");
    inner.answer = (req) => reply(req, 200, taskRecord("run:2", 3, undefined, "fulfilled"));
    await create("run:2");
    const { sent } = await beat();
    expect(sent.map((r) => r.data)).toEqual([{ pid: "p1", tasks: [{ id: "run:1", version: 1 }] }]);
  });

  test("an answer that gives the task to another pid, or a refused acquire, holds nothing", async () => {
    const { acquire, answerWith, send, beat } = setup();
    await acquire("x", 0, "p2");
    answerWith(409, "Task is not pending");
    await send({ kind: "task.acquire", head: head(), data: { id: "y", version: 0, pid: "p1", ttl: 1_000 } });
    expect((await beat()).sent).toEqual([]);
  });

  test("suspend 200, fulfill 200, release 200 and a 404 or 409 fence let a task go; suspend 300 and fence 200 keep it", async () => {
    const { acquire, answerWith, send, beat, network } = setup();
    for (const id of ["s200", "s300", "f", "r", "fence409", "fence404", "fence200"]) await acquire(id, 0);
    const at = (id: string) => ({ id, version: 1 });
    answerWith(200);
    await send({ kind: "task.suspend", head: head(), data: { ...at("s200"), actions: [] } });
    answerWith(300, { preload: [] });
    await send({ kind: "task.suspend", head: head(), data: { ...at("s300"), actions: [] } });
    answerWith(200, { promise: {} });
    await send({ kind: "task.fulfill", head: head(), data: { ...at("f"), action: {} } });
    answerWith(200);
    await send({ kind: "task.release", head: head(), data: at("r") });
    answerWith(409, "Fence check failed");
    await send({ kind: "task.fence", head: head(), data: { ...at("fence409"), action: {} } });
    answerWith(404, "Task not found");
    await send({ kind: "task.fence", head: head(), data: { ...at("fence404"), action: {} } });
    answerWith(200, { action: {}, preload: [] });
    await send({ kind: "task.fence", head: head(), data: { ...at("fence200"), action: {} } });
    expect(network.leases.held()).toEqual([at("s300"), at("fence200")]);
    expect((await beat()).sent.map((r) => r.data)).toEqual([
      { pid: "p1", tasks: [at("s300")] },
      { pid: "p1", tasks: [at("fence200")] },
    ]);
  });

  test("an answer about an older version of a task does not let go of the newer lease", async () => {
    const { acquire, answerWith, send, network } = setup();
    await acquire("t", 0);
    await acquire("t", 4);
    answerWith(409, "Version mismatch");
    await send({ kind: "task.fulfill", head: head(), data: { id: "t", version: 1, action: {} } });
    expect(network.leases.held()).toEqual([{ id: "t", version: 5 }]);
  });

  test("a fulfill, release or suspend that fails on the way lets go (the SDK gave the task up); a failed fence does not", async () => {
    const { inner, acquire, send, network } = setup();
    for (const id of ["f", "r", "s", "fence"]) await acquire(id, 0);
    inner.answer = () => {
      throw new Error("connection lost");
    };
    const at = (id: string) => ({ id, version: 1 });
    const fail = (req: unknown) => expect(send(req)).rejects.toThrow("connection lost");
    await fail({ kind: "task.fulfill", head: head(), data: { ...at("f"), action: {} } });
    await fail({ kind: "task.release", head: head(), data: at("r") });
    await fail({ kind: "task.suspend", head: head(), data: { ...at("s"), actions: [] } });
    await fail({ kind: "task.fence", head: head(), data: { ...at("fence"), action: {} } });
    expect(network.leases.held()).toEqual([at("fence")]);
    await fail({ kind: "task.heartbeat", head: head(), data: { pid: "p1", tasks: [] } });
  });

  test("a task is not heartbeated once its promise's timeout has passed, as when the SDK dropped it without a word", async () => {
    const { acquire, beat, network } = setup();
    await acquire("gone", 0, "p1", Date.now() - 1);
    await acquire("live", 0);
    expect((await beat()).sent.map((r) => r.data)).toEqual([
      { pid: "p1", tasks: [{ id: "live", version: 1 }] },
    ]);
    expect(network.leases.held()).toEqual([{ id: "live", version: 1 }]);
  });

  test("a fulfill in flight is still heartbeated until it is answered", async () => {
    const { inner, acquire, send, beat } = setup();
    await acquire("t", 0);
    let answer: () => void = () => {};
    inner.answer = (req) =>
      new Promise((resolve) => {
        answer = () => resolve(reply(req, 200, { promise: {} }));
      });
    const fulfilled = send({ kind: "task.fulfill", head: head(), data: { id: "t", version: 1, action: {} } });
    expect((await beat()).sent.map((r) => r.data)).toEqual([{ pid: "p1", tasks: [{ id: "t", version: 1 }] }]);
    answer();
    await fulfilled;
    expect((await beat()).sent).toEqual([]);
  });

  test("other requests pass through untouched, with their answers", async () => {
    const { inner, send } = setup();
    inner.answer = (req) => reply(req, 404, "Promise not found");
    const res = await send({ kind: "promise.get", head: head("g"), data: { id: "nope" } });
    expect(res).toEqual({
      kind: "promise.get",
      head: { corrId: "g", status: 404, version: VERSION },
      data: "Promise not found",
    });
    expect(inner.sent).toEqual([{ kind: "promise.get", head: head("g"), data: { id: "nope" } }]);
  });

  test("the origin of an id is what comes before its first dot", () => {
    expect([originOf("order:1"), originOf("order:1.2"), originOf("a.b.c"), originOf("")]).toEqual([
      "order:1",
      "order:1",
      "a",
      "",
    ]);
  });
});

describe("HeartbeatingNetwork: what the spans of runs learn from the answers", () => {
  const traceparent = (span: string) => `00-${"a".repeat(32)}-${span.repeat(16)}-01`;
  /** A run's fenced `promise.create` of `id` tagged `sent`, answered with a promise tagged `stored`. */
  const fencedCreate = async (id: string, sent: string, stored: string) => {
    const { inner, network, send } = setup();
    const told: unknown[] = [];
    network.onTracedPromise((p) => told.push(p));
    inner.answer = (req) =>
      reply(req, 200, {
        action: {
          kind: "promise.create",
          head: { corrId: "i", status: 200, version: VERSION },
          data: { promise: { id, state: "pending", tags: { traceparent: stored } } },
        },
        preload: [],
      });
    await send({
      kind: "task.fence",
      head: head(),
      data: {
        id: "wf",
        version: 1,
        action: { kind: "promise.create", head: head("i"), data: { id, tags: { traceparent: sent } } },
      },
    });
    return told;
  };

  test("a traced promise a run creates is reported with the traceparent it was sent and the one it carries", async () => {
    expect(await fencedCreate("wf.1", traceparent("1"), traceparent("1"))).toEqual([
      { id: "wf.1", sent: traceparent("1"), stored: traceparent("1") },
    ]);
    // An earlier run made it: the promise keeps that run's traceparent.
    expect(await fencedCreate("wf.1", traceparent("2"), traceparent("1"))).toEqual([
      { id: "wf.1", sent: traceparent("2"), stored: traceparent("1") },
    ]);
  });

  test("an acquire's preload reports its pending traced promises, not its settled or untraced ones", async () => {
    const { inner, network, send } = setup();
    const told: unknown[] = [];
    network.onTracedPromise((p) => told.push(p));
    inner.answer = (req) =>
      reply(req, 200, {
        ...taskRecord("wf", 2),
        preload: [
          { id: "wf.0", state: "resolved", tags: { traceparent: traceparent("1") } },
          { id: "wf.1", state: "pending", tags: { traceparent: traceparent("1") } },
          { id: "wf.2", state: "pending", tags: {} },
        ],
      });
    await send({ kind: "task.acquire", head: head(), data: { id: "wf", version: 1, pid: "p1", ttl: 1_000 } });
    expect(told).toEqual([{ id: "wf.1", sent: undefined, stored: traceparent("1") }]);
  });

  test("a traced task's trace tags and the version it was taken at are kept; an untraced one's are not", async () => {
    const { inner, network, send } = setup();
    const answer = (id: string, tags: Record<string, string>) => {
      inner.answer = (req) =>
        reply(req, 200, { ...taskRecord(id, 2), promise: { id, timeoutAt: Date.now() + 60_000, tags } });
    };
    answer("leaf", { traceparent: traceparent("3") });
    await send({
      kind: "task.acquire",
      head: head(),
      data: { id: "leaf", version: 1, pid: "p1", ttl: 1_000 },
    });
    answer("plain", {});
    await send({
      kind: "task.acquire",
      head: head(),
      data: { id: "plain", version: 0, pid: "p1", ttl: 1_000 },
    });
    expect([network.traceOf("leaf"), network.takenAt("leaf")]).toEqual([
      { traceparent: traceparent("3") },
      2,
    ]);
    expect([network.traceOf("plain"), network.takenAt("plain")]).toEqual([undefined, undefined]);
  });
});

describe("resonateClient in-process (no RESONATE_URL)", () => {
  test("a step four times the ttl keeps its lease on the local network and runs once", async () => {
    const { resonate } = resonateClient(
      { resonateUrl: undefined, resonateToken: undefined, resonateTimeoutMs: 10_000, resonateTtlMs: 500 },
      "local",
      `local-${crypto.randomUUID()}`,
    );
    let runs = 0;
    resonate.register("long_step", function* (ctx: Context) {
      return yield* ctx.run(async () => {
        runs++;
        await Bun.sleep(2_000);
        return "done";
      });
    });
    try {
      expect(await resonate.run(`long:${crypto.randomUUID()}`, "long_step")).toBe("done");
      expect(runs).toBe(1);
    } finally {
      await resonate.stop();
    }
  }, 15_000);
});
