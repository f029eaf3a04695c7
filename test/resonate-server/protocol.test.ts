import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { getTask, protocolCall, startResonateServer, waitFor } from "../../harness/index.ts";
import { requireCapability } from "../support/capability.ts";
import {
  clientResult,
  E2E_TIMEOUT,
  openMessageStream,
  runId,
  startClientFixture,
  startWorkerFixture,
  stepCount,
} from "../support/processes.ts";
import { tempDir } from "../support/temp.ts";

describe("resonate server: protocol round trips between SDK processes", () => {
  test(
    "a client in group api runs a function registered by a worker in another group",
    async () => {
      await using server = await startResonateServer();
      await using worker = await startWorkerFixture(server, { group: "workers", pid: "w1" });
      const id = `combine:${runId()}`;
      await using client = startClientFixture(server, {
        id,
        func: "combine",
        target: "workers",
        args: [3, 4],
      });
      await client.ready;
      await waitFor(() => clientResult(client), { timeout: 15_000, message: "client result" });
      expect(clientResult(client)).toBe(38);
      expect(stepCount([worker], "times-ten", id)).toBe(1);
      expect(stepCount([worker], "double", `${id}.1`)).toBe(1);
    },
    E2E_TIMEOUT,
  );

  test(
    "poll://uni@group/pid reaches only that process",
    async () => {
      await using server = await startResonateServer();
      await using w1 = await startWorkerFixture(server, { group: "uni", pid: "w1" });
      await using _w2 = await startWorkerFixture(server, { group: "uni", pid: "w2" });
      const ids = [0, 1, 2, 3].map((i) => `uni:${runId()}-${i}`);
      const clients = ids.map((id) =>
        startClientFixture(server, { id, func: "whoami", target: "poll://uni@uni/w2", args: [id] }),
      );
      try {
        for (const c of clients)
          await waitFor(() => clientResult(c), { timeout: 15_000, message: `${c.name} result` });
        for (const [i, c] of clients.entries())
          expect(clientResult(c)).toEqual({ pid: "w2", group: "uni", tag: ids[i] });
        for (const id of ids) expect(stepCount([w1], "whoami", id)).toBe(0);
      } finally {
        await Promise.all(clients.map((c) => c.stop()));
      }
    },
    E2E_TIMEOUT,
  );

  test(
    "poll://any@group spreads work over the group's processes",
    async () => {
      await using server = await startResonateServer();
      await using w1 = await startWorkerFixture(server, { group: "any", pid: "w1" });
      await using w2 = await startWorkerFixture(server, { group: "any", pid: "w2" });
      // 16 calls: the real server picks a stream at random, and all 16 on one worker has odds of 1 in 32768.
      const ids = Array.from({ length: 16 }, (_, i) => `any:${runId()}-${i}`);
      const clients = ids.map((id) =>
        startClientFixture(server, { id, func: "whoami", target: "any", args: [id] }),
      );
      try {
        for (const c of clients)
          await waitFor(() => clientResult(c), { timeout: 15_000, message: `${c.name} result` });
        const pids = new Set(clients.map((c) => (clientResult(c) as { pid: string }).pid));
        expect(pids).toEqual(new Set(["w1", "w2"]));
        for (const id of ids) expect(stepCount([w1, w2], "whoami", id)).toBe(1);
      } finally {
        await Promise.all(clients.map((c) => c.stop()));
      }
    },
    E2E_TIMEOUT,
  );

  test(
    "poll://any@group/pid prefers that pid and falls back to the group when it is gone",
    async () => {
      await using server = await startResonateServer();
      await using w1 = await startWorkerFixture(server, { group: "pref", pid: "w1" });
      const w2 = await startWorkerFixture(server, { group: "pref", pid: "w2" });
      const first = `pref:${runId()}-a`;
      await using c1 = startClientFixture(server, {
        id: first,
        func: "whoami",
        target: "poll://any@pref/w2",
        args: [first],
      });
      await waitFor(() => clientResult(c1), { timeout: 15_000, message: "first result" });
      expect(clientResult(c1)).toEqual({ pid: "w2", group: "pref", tag: first });

      await w2.stop();
      const second = `pref:${runId()}-b`;
      await using c2 = startClientFixture(server, {
        id: second,
        func: "whoami",
        target: "poll://any@pref/w2",
        args: [second],
      });
      await waitFor(() => clientResult(c2), { timeout: 15_000, message: "second result" });
      expect(clientResult(c2)).toEqual({ pid: "w1", group: "pref", tag: second });
      expect(stepCount([w1], "whoami", second)).toBe(1);
    },
    E2E_TIMEOUT,
  );

  test(
    "work submitted while no worker is connected is offered again at the task's retry timeout, not when a worker connects",
    async () => {
      // The first execute finds no stream and is dropped, as on the real server; the retry timeout re-offers it.
      const retryTimeoutMs = 5_000;
      await using server = await startResonateServer({ retryTimeoutMs, tickMs: 100 });
      const id = `late:${runId()}`;
      await using client = startClientFixture(server, { id, func: "double", target: "late", args: [21] });
      await client.ready;
      const submitted = Date.now();
      await using worker = await startWorkerFixture(server, { group: "late", pid: "w1" });
      const connected = Date.now();
      // Connected well before the retry timeout, so a send on connect would have shown up early.
      expect(connected - submitted).toBeLessThan(retryTimeoutMs - 2_000);
      await waitFor(() => clientResult(client), { timeout: 20_000, message: "client result" });
      expect(clientResult(client)).toBe(42);
      expect(Date.now() - submitted).toBeGreaterThanOrEqual(retryTimeoutMs - 500);
      expect(stepCount([worker], "double", id)).toBe(1);
    },
    E2E_TIMEOUT,
  );

  test(
    "the delivery loop sends at most --messages-batch-size executes a run, one run every --messages-poll-interval",
    async () => {
      await using server = await startResonateServer({ messagesPollIntervalMs: 500, messagesBatchSize: 2 });
      const arrivals: number[] = [];
      const stream = await openMessageStream(server, "batch", "p1", (message) => {
        if ((message as { kind: string }).kind === "execute") arrivals.push(Date.now());
      });
      try {
        const id = runId();
        for (let i = 0; i < 5; i++) {
          const created = await protocolCall(server.url, "promise.create", {
            id: `batch:${id}-${i}`,
            timeoutAt: Date.now() + 60_000,
            param: {},
            tags: { "resonate:target": "poll://any@batch" },
          });
          expect(created.status).toBe(200);
        }
        await waitFor(() => arrivals.length === 5, { timeout: 10_000, message: "five executes" });
        // Runs are 500 ms apart, so arrivals within 250 ms of each other came in the same run.
        const runs: number[][] = [];
        for (const at of arrivals) {
          const last = runs.at(-1);
          if (last && at - (last[0] as number) < 250) last.push(at);
          else runs.push([at]);
        }
        expect(runs.length).toBeGreaterThanOrEqual(3);
        expect(runs.every((run) => run.length <= 2)).toBe(true);
      } finally {
        stream.close();
      }
    },
    E2E_TIMEOUT,
  );

  test(
    "a second stream of the same pid waits behind the first: messages for the pid go to the first until it ends",
    async () => {
      await using server = await startResonateServer();
      const got = { first: 0, second: 0 };
      const open = (which: keyof typeof got) =>
        openMessageStream(server, "twice", "p1", () => {
          got[which]++;
        });
      const first = await open("first");
      const second = await open("second");
      const id = runId();
      let n = 0;
      const send = async () => {
        const created = await protocolCall(server.url, "promise.create", {
          id: `twice:${id}-${n++}`,
          timeoutAt: Date.now() + 60_000,
          param: {},
          tags: { "resonate:target": "poll://uni@twice/p1" },
        });
        expect(created.status).toBe(200);
      };
      try {
        await send();
        await waitFor(() => got.first === 1, { message: "the first stream got the message" });
        expect(got.second).toBe(0);
        first.close();
        await waitFor(
          async () => {
            await send();
            return got.second > 0;
          },
          { interval: 200, message: "the second stream gets messages once the first ended" },
        );
        expect(got.first).toBe(1);
      } finally {
        first.close();
        second.close();
      }
    },
    E2E_TIMEOUT,
  );

  test(
    "refuses a message stream past --transports-http-poll-max-connections with 503",
    async () => {
      await using server = await startResonateServer({ maxConnections: 2 });
      const open = (pid: string) => openMessageStream(server, "cap", pid, () => {});
      const streams = [await open("a"), await open("b")];
      try {
        await expect(open("c")).rejects.toThrow("event stream answered 503");
      } finally {
        for (const stream of streams) stream.close();
      }
    },
    E2E_TIMEOUT,
  );

  requireCapability("trace")(
    "--trace writes one {kind, now, req, res} line per protocol call",
    async () => {
      using dir = tempDir("trace-");
      const tracePath = join(dir.path, "trace.ndjson");
      await using server = await startResonateServer({ tracePath });
      const created = await protocolCall(server.url, "promise.create", {
        id: "traced",
        timeoutAt: Date.now() + 60_000,
        tags: {},
      });
      await protocolCall(server.url, "promise.get", { id: "missing" });
      const lines = readFileSync(tracePath, "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l));
      expect(lines.map((l) => [l.kind, l.res.head.status])).toEqual([
        ["promise.create", 200],
        ["promise.get", 404],
      ]);
      expect(lines[0]).toEqual({
        kind: "promise.create",
        now: expect.any(Number),
        req: { id: "traced", timeoutAt: expect.any(Number), param: {}, tags: {} },
        res: created.body,
      });
    },
    E2E_TIMEOUT,
  );

  test(
    "a step four times the client's ttl keeps its lease: it runs once, on one of two workers, and completes",
    async () => {
      // ttl 1000 ms and a 4000 ms step: only heartbeats that name the task keep the other worker from running it again.
      await using server = await startResonateServer({ tickMs: 100 });
      await using worker = await startWorkerFixture(server, { group: "long", pid: "w1", ttl: 1_000 });
      await using other = await startWorkerFixture(server, { group: "long", pid: "w2", ttl: 1_000 });
      const id = `long:${runId()}`;
      await using client = startClientFixture(server, { id, func: "slow", target: "long", args: [4_000, 7] });
      await waitFor(() => clientResult(client), { timeout: 20_000, message: "client result" });
      expect(clientResult(client)).toBe(107);
      expect(stepCount([worker, other], "slow-start", id)).toBe(1);
      expect(stepCount([worker, other], "slow-end", id)).toBe(1);
      expect((await getTask(server.url, id))?.state).toBe("fulfilled");
    },
    E2E_TIMEOUT,
  );

  requireCapability("strictHeartbeats")(
    "refuses a heartbeat that names no task, or tasks of two origins, as the real server's later releases do",
    async () => {
      await using server = await startResonateServer();
      const empty = await protocolCall(server.url, "task.heartbeat", { pid: "p1", tasks: [] });
      const mixed = await protocolCall(server.url, "task.heartbeat", {
        pid: "p1",
        tasks: [
          { id: "a", version: 1 },
          { id: "b.1", version: 1 },
        ],
      });
      const same = await protocolCall(server.url, "task.heartbeat", {
        pid: "p1",
        tasks: [
          { id: "a", version: 1 },
          { id: "a.1", version: 1 },
        ],
      });
      expect([empty.status, mixed.status, same.status]).toEqual([400, 400, 200]);
      expect([empty.body.data, mixed.body.data]).toEqual([
        "Tasks array must not be empty",
        "All tasks must belong to the same origin",
      ]);
    },
  );
});
