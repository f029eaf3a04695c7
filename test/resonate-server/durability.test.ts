import { describe, expect, test } from "bun:test";
import {
  getPromise,
  getTask,
  PROTOCOL_VERSION,
  protocolCall,
  startResonateServer,
  waitFor,
} from "../../harness/index.ts";
import {
  clientResult,
  E2E_TIMEOUT,
  runId,
  startClientFixture,
  startWorkerFixture,
  stepCount,
} from "../support/processes.ts";

/** Every array in a snapshot sorted, since a reload may list records in another order. */
function sorted(value: unknown): unknown {
  if (Array.isArray(value)) {
    return value.map(sorted).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
  }
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, sorted(v)]));
  }
  return value;
}

const FAST = { retryTimeoutMs: 2_000, tickMs: 100 } as const;

describe("resonate server: kill -9 and restart on the same file loses nothing acknowledged", () => {
  test(
    "a workflow suspended in ctx.sleep completes after the server is killed and restarted",
    async () => {
      await using server = await startResonateServer(FAST);
      await using worker = await startWorkerFixture(server, { group: "nap", pid: "w1" });
      const id = `nap:${runId()}`;
      await using client = startClientFixture(server, { id, func: "nap", target: "nap", args: [2_000, 5] });
      await waitFor(async () => (await getTask(server.url, id))?.state === "suspended", {
        timeout: 15_000,
        message: "workflow suspended on its sleep",
      });
      expect((await getPromise(server.url, `${id}.1`))?.state).toBe("pending");

      await server.kill();
      await server.restart();

      await waitFor(() => clientResult(client), { timeout: 30_000, message: "client result after restart" });
      expect(clientResult(client)).toBe(12);
      expect((await getPromise(server.url, `${id}.1`))?.state).toBe("resolved");
      expect(stepCount([worker], "before-sleep", id)).toBe(1);
      expect(stepCount([worker], "after-sleep", id)).toBe(1);
    },
    E2E_TIMEOUT,
  );

  test(
    "a workflow whose task is leased completes after the server is killed and restarted",
    async () => {
      await using server = await startResonateServer(FAST);
      await using worker = await startWorkerFixture(server, { group: "slow", pid: "w1", ttl: 2_000 });
      const id = `slow:${runId()}`;
      await using client = startClientFixture(server, { id, func: "slow", target: "slow", args: [1_500, 1] });
      await waitFor(() => stepCount([worker], "slow-start", id) === 1, {
        timeout: 15_000,
        message: "step started",
      });
      expect((await getTask(server.url, id))?.state).toBe("acquired");

      await server.kill();
      await server.restart();

      await waitFor(() => clientResult(client), { timeout: 30_000, message: "client result after restart" });
      expect(clientResult(client)).toBe(101);
      expect((await getTask(server.url, id))?.state).toBe("fulfilled");
    },
    E2E_TIMEOUT,
  );

  test(
    "work submitted while no worker is connected survives a kill and reaches a worker that connects later",
    async () => {
      // Its first execute found no worker and was dropped; the retry timeout, which came back from disk, offers it again.
      await using server = await startResonateServer(FAST);
      const id = `later:${runId()}`;
      await using client = startClientFixture(server, { id, func: "double", target: "later", args: [8] });
      await client.ready;

      await server.kill();
      await server.restart();
      await using worker = await startWorkerFixture(server, { group: "later", pid: "w1" });

      await waitFor(() => clientResult(client), { timeout: 15_000, message: "client result" });
      expect(clientResult(client)).toBe(16);
      expect(stepCount([worker], "double", id)).toBe(1);
    },
    E2E_TIMEOUT,
  );

  test(
    "promises, tasks, leases, callbacks, listeners, schedules and undelivered messages all come back",
    async () => {
      // Messages stay in the outbox until the delivery loop takes them: here not before the kill.
      await using server = await startResonateServer({ debug: true, messagesPollIntervalMs: 600_000 });
      const url = server.url;
      const far = Date.now() + 3_600_000;
      const call = async (kind: string, data: unknown) => {
        const reply = await protocolCall(url, kind, data);
        expect(reply.status).toBeLessThan(400);
        return reply.body.data;
      };
      // A root task acquired by p1 that awaits a child; a listener on the child; an unrouted root.
      await call("task.create", {
        pid: "p1",
        ttl: 600_000,
        action: {
          kind: "promise.create",
          head: { corrId: "c", version: PROTOCOL_VERSION },
          data: {
            id: "root",
            timeoutAt: far,
            param: {},
            tags: { "resonate:target": "poll://any@g", "resonate:origin": "root" },
          },
        },
      });
      await call("promise.create", {
        id: "root.1",
        timeoutAt: far,
        param: { data: btoa('"x"') },
        tags: { "resonate:origin": "root", "resonate:parent": "root", "resonate:branch": "root.1" },
      });
      await call("promise.register_listener", { awaited: "root.1", address: "poll://uni@api/a1" });
      await call("task.suspend", {
        id: "root",
        version: 1,
        actions: [
          {
            kind: "promise.register_callback",
            head: { corrId: "c", version: PROTOCOL_VERSION },
            data: { awaited: "root.1", awaiter: "root" },
          },
        ],
      });
      await call("promise.create", {
        id: "queued",
        timeoutAt: far,
        param: {},
        tags: { "resonate:target": "poll://any@nobody" },
      });
      await call("task.create", {
        pid: "p2",
        ttl: 600_000,
        action: {
          kind: "promise.create",
          head: { corrId: "c", version: PROTOCOL_VERSION },
          data: { id: "leased", timeoutAt: far, param: {}, tags: { "resonate:target": "poll://any@g" } },
        },
      });
      await call("schedule.create", {
        id: "nightly",
        cron: "0 3 * * *",
        promiseId: "nightly.{{.timestamp}}",
        promiseTimeout: 60_000,
        promiseParam: {},
        promiseTags: { "resonate:target": "poll://any@g" },
      });
      const before = await call("debug.snap", {});
      const scheduleBefore = await call("schedule.get", { id: "nightly" });
      expect(before).toMatchObject({
        callbacks: [{ awaiter: "root", awaited: "root.1" }],
        listeners: [{ id: "root.1", address: "poll://uni@api/a1" }],
        messages: [{ address: "poll://any@nobody" }],
      });

      await server.kill();
      await server.restart();

      expect(sorted(await call("debug.snap", {}))).toEqual(sorted(before));
      expect(await call("schedule.get", { id: "nightly" })).toEqual(scheduleBefore);
    },
    E2E_TIMEOUT,
  );

  for (const synchronous of ["full", "normal"] as const) {
    test(
      `synchronous ${synchronous}: with segments sealed, folded and reused many times over, two kills in a row lose no acknowledged change`,
      async () => {
        // 4 KiB segments: a few commits each, so the log seals, folds and reuses files all the time.
        await using server = await startResonateServer({ segmentBytes: 4096, synchronous });
        const far = Date.now() + 3_600_000;
        const expected = new Map<string, "pending" | "resolved" | "rejected">();
        const round = async (from: number, to: number) => {
          for (let i = from; i < to; i++) {
            const id = `seg-${i}`;
            const created = await protocolCall(server.url, "promise.create", {
              id,
              timeoutAt: far,
              param: { data: btoa(JSON.stringify({ i, pad: "x".repeat(200) })) },
              tags: {},
            });
            expect(created.status).toBe(200);
            expected.set(id, "pending");
            if (i % 3 === 0) {
              const settled = await protocolCall(server.url, "promise.settle", {
                id,
                state: i % 2 === 0 ? "resolved" : "rejected",
                value: { data: btoa(String(i)) },
              });
              expect(settled.status).toBe(200);
              expected.set(id, i % 2 === 0 ? "resolved" : "rejected");
            }
          }
        };
        const check = async () => {
          for (const [id, state] of expected) {
            const promise = await getPromise(server.url, id);
            expect({ id, state: promise?.state }).toEqual({ id, state });
          }
        };

        await round(0, 150);
        await server.kill();
        await server.restart();
        await check();
        await round(150, 300);
        await server.kill();
        await server.restart();
        await check();
      },
      E2E_TIMEOUT,
    );
  }

  test(
    "a task acquired after a restart gets the promises of its branch preloaded, as before it",
    async () => {
      await using server = await startResonateServer(FAST);
      const head = { corrId: "c", version: PROTOCOL_VERSION };
      const created = await protocolCall(server.url, "task.create", {
        pid: "p1",
        ttl: 60_000,
        action: {
          kind: "promise.create",
          head,
          data: {
            id: "r",
            timeoutAt: Date.now() + 600_000,
            param: {},
            tags: { "resonate:target": "poll://any@nobody", "resonate:branch": "r" },
          },
        },
      });
      expect(created.status).toBe(200);
      const child = await protocolCall(server.url, "task.fence", {
        id: "r",
        version: 1,
        action: {
          kind: "promise.create",
          head,
          data: {
            id: "r.0",
            timeoutAt: Date.now() + 600_000,
            param: {},
            tags: { "resonate:origin": "r", "resonate:branch": "r", "resonate:parent": "r" },
          },
        },
      });
      expect(child.status).toBe(200);
      expect((await protocolCall(server.url, "task.release", { id: "r", version: 1 })).status).toBe(200);
      const preloaded = async () => {
        const acquired = await protocolCall<{ task: { version: number }; preload: { id: string }[] }>(
          server.url,
          "task.acquire",
          { id: "r", version: 1, pid: "p2", ttl: 60_000 },
        );
        expect(acquired.status).toBe(200);
        return acquired.body.data.preload.map((p) => p.id);
      };
      // The restarted server knows the branch only from what it loaded.
      await server.kill();
      await server.restart();
      expect(await preloaded()).toEqual(["r.0"]);
    },
    E2E_TIMEOUT,
  );

  test(
    "a lease that comes back from disk is kept by heartbeats that name it, and lapses without them",
    async () => {
      await using server = await startResonateServer({ tickMs: 50 });
      const create = (id: string) =>
        protocolCall(server.url, "task.create", {
          pid: "p1",
          ttl: 4_000,
          action: {
            kind: "promise.create",
            head: { corrId: "c", version: PROTOCOL_VERSION },
            data: {
              id,
              timeoutAt: Date.now() + 600_000,
              param: {},
              tags: { "resonate:target": "poll://any@nobody" },
            },
          },
        });
      expect((await create("kept")).status).toBe(200);
      expect((await create("abandoned")).status).toBe(200);
      const beat = async () => {
        const reply = await protocolCall(server.url, "task.heartbeat", {
          pid: "p1",
          tasks: [{ id: "kept", version: 1 }],
        });
        expect(reply.status).toBe(200);
      };

      await server.kill();
      await server.restart();
      await waitFor(
        async () => {
          await beat();
          return (await getTask(server.url, "abandoned"))?.state === "pending";
        },
        { timeout: 15_000, interval: 200, message: "abandoned lease lapsed" },
      );
      expect((await getTask(server.url, "kept"))?.state).toBe("acquired");
    },
    E2E_TIMEOUT,
  );
});
