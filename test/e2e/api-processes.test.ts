/**
 * Several API processes on one port, as containers run them, and how one
 * stops: each takes a Resonate pid of its own even when it is pid 1 of its
 * own PID namespace; on SIGTERM it hands its event streams a reconnect,
 * finishes what is in flight, and exits within SHUTDOWN_GRACE_MS whatever
 * a client holds open; a second signal exits at once.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import {
  type ChildProcess,
  freePort,
  spawnApi,
  spawnProcess,
  startSystem,
  waitFor,
} from "../../harness/index.ts";
import { RECONNECT_EVENT } from "../../src/jobs/watch.ts";
import { E2E_TIMEOUT, runId } from "../support/processes.ts";

const API_MAIN = resolve(import.meta.dir, "../../src/main.ts");

/** A Resonate server, one pricing and one db worker, and the API's environment (callers not checked). */
const pricingSystem = () =>
  startSystem({ workers: { "pricing-workers": 1, db: 1 }, apiAuth: false, sandbox: false });

/** The pid of the one child of `pid` (what `unshare --fork` runs). */
function childOf(pid: number): number {
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/);
  const child = Number(children[0]);
  if (!Number.isInteger(child) || child <= 0) throw new Error(`process ${pid} has no child yet`);
  return child;
}

/**
 * An API process started as a container starts it: the first process of a
 * PID namespace of its own (so `process.pid` is 1), with `env`. `stop()`
 * sends SIGTERM to that process itself (`unshare` ignores it), and the
 * namespace's process gets SIGTERM too if `unshare` dies.
 */
function containerApi(env: Record<string, string>): ChildProcess & { inner(): number } {
  const child = spawnProcess({
    name: "api (own PID namespace)",
    cmd: ["unshare", "--pid", "--fork", "--kill-child=SIGTERM", process.execPath, API_MAIN],
    env,
    readyLine: /^api listening on /,
  });
  const inner = () => childOf(child.pid);
  const stop = () => {
    try {
      process.kill(inner(), "SIGTERM");
    } catch {
      child.kill("SIGKILL");
    }
    return child.exited;
  };
  return Object.assign(child, {
    inner,
    stop,
    [Symbol.asyncDispose]: async () => {
      await stop();
    },
  });
}

/** POSTs `count` distinct quotes at once and counts the answers by status. */
async function quoteStatuses(url: string, count: number, tag: string): Promise<Record<number, number>> {
  const statuses = await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const res = await fetch(`${url}/price-quote`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ sku: "sku-7", qty: i + 1, customer_id: tag }),
      });
      await res.arrayBuffer();
      return res.status;
    }),
  );
  const counts: Record<number, number> = {};
  for (const status of statuses) counts[status] = (counts[status] ?? 0) + 1;
  return counts;
}

describe("API processes in PID namespaces of their own, on one port", () => {
  test(
    "both pid 1, with the same settings: each takes its own Resonate pid, and 60 of 60 quotes are 200",
    async () => {
      await using system = await pricingSystem();
      const port = freePort();
      const env = { ...system.env, AUTH_DISABLED: "1", PORT: String(port), API_PID: "" };
      await using first = containerApi(env);
      await first.ready;
      await using second = containerApi(env);
      await second.ready;
      const pids = [first, second].map((api) => /, pid (\S+)\)$/m.exec(api.output())?.[1]);
      for (const pid of pids) expect(pid).toMatch(/^api-.+-1-[0-9a-f]{8}$/);
      expect(pids[0]).not.toBe(pids[1]);
      expect(await quoteStatuses(`http://127.0.0.1:${port}`, 60, runId())).toEqual({ 200: 60 });
      // pid 1 of a namespace ignores a signal it has no handler for; the API has one.
      expect(await first.stop()).toBe(0);
      expect(await quoteStatuses(`http://127.0.0.1:${port}`, 10, runId())).toEqual({ 200: 10 });
    },
    E2E_TIMEOUT,
  );
});

/** An API process of its own on a port of its own, against `system`, with `env` over the system's. */
const ownApi = (system: { env: Readonly<Record<string, string>> }, env: Record<string, string> = {}) =>
  spawnApi({ env: { ...system.env, AUTH_DISABLED: "1", PORT: "0", ...env } });

/** The API's `http_requests_in_flight`, the scrape that reads it included. */
async function inFlight(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(/^http_requests_in_flight (\d+)$/m.exec(text)?.[1] ?? Number.NaN);
}

/**
 * A request whose body never ends: its headers promise 1000 bytes and one
 * arrives. Resolves once the API counts it in flight; `closed` when the
 * API closes the connection.
 */
async function holdRequest(url: string) {
  const closed = Promise.withResolvers<void>();
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port: Number(new URL(url).port),
    socket: { data() {}, close: () => closed.resolve(), error: () => closed.resolve() },
  });
  socket.write(
    "POST /jobs HTTP/1.1\r\nhost: api\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{",
  );
  await waitFor(async () => (await inFlight(url)) >= 2 || undefined, {
    message: "the held request is in flight",
  });
  return { socket, closed: closed.promise };
}

/** Reads an event stream until `until` holds of what came so far, or it ends; returns the text. */
async function readStream(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  text = "",
  until: (text: string) => boolean = () => false,
): Promise<string> {
  const decoder = new TextDecoder();
  while (!until(text)) {
    const { done, value } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  return text;
}

describe("an API process on SIGTERM", () => {
  test(
    "its event stream gets the reconnect event and ends, a Prefer: wait answers with the job as it is, and it exits 0 within the grace",
    async () => {
      await using system = await startSystem({ workers: { "order-workers": 1, db: 1 }, apiAuth: false });
      const grace = 3_000;
      await using api = await ownApi(system, { SHUTDOWN_GRACE_MS: String(grace), JOB_MAX_WAIT_MS: "60000" });
      const orderId = `sigterm-${runId()}`;
      expect((await fetch(`${api.url}/orders/${orderId}/approve-and-ship`, { method: "POST" })).status).toBe(
        202,
      );
      const stream = await fetch(`${api.url}/jobs/ship:${orderId}/events`);
      expect(stream.status).toBe(200);
      const reader = stream.body?.getReader() as ReadableStreamDefaultReader<Uint8Array>;
      const before = await readStream(reader, "", (text) => text.includes("id: 1\n"));
      const waiting = fetch(`${api.url}/jobs/ship:${orderId}`, { headers: { prefer: "wait=60" } });
      // In flight: the wait and the scrape that counts it (a stream counts until its answer begins).
      await waitFor(async () => (await inFlight(api.url)) >= 2 || undefined, {
        message: "the wait is in flight",
      });
      const signaled = Date.now();
      api.kill("SIGTERM");
      const waited = await waiting;
      expect(waited.status).toBe(200);
      expect(await waited.json()).toEqual({
        job_id: `ship:${orderId}`,
        status: "running",
        started_at: expect.any(String),
      });
      const text = await readStream(reader, before);
      expect(text).toEndWith(RECONNECT_EVENT);
      expect(await api.exited).toBe(0);
      expect(Date.now() - signaled).toBeLessThan(grace);
      // It listens no more.
      expect(
        await fetch(`${api.url}/healthz`).then(
          () => "answered",
          () => "refused",
        ),
      ).toBe("refused");
      expect(api.output()).toContain('"msg":"stopping: draining"');
    },
    E2E_TIMEOUT,
  );

  test(
    "a request whose body never ends is cut when SHUTDOWN_GRACE_MS runs out, and the process exits 0",
    async () => {
      await using system = await startSystem({ workers: { db: 1 }, apiAuth: false, sandbox: false });
      const grace = 1_500;
      await using api = await ownApi(system, { SHUTDOWN_GRACE_MS: String(grace), BODY_TIMEOUT_MS: "600000" });
      const held = await holdRequest(api.url);
      const signaled = Date.now();
      api.kill("SIGTERM");
      expect(await api.exited).toBe(0);
      const took = Date.now() - signaled;
      // It waited for the request in flight, then cut it at the grace.
      expect(took).toBeGreaterThanOrEqual(grace - 100);
      expect(took).toBeLessThan(grace + 2_000);
      await held.closed;
      expect(api.output()).toContain("shutdown grace ran out");
    },
    E2E_TIMEOUT,
  );

  test(
    "a second signal exits at once, while the first still waits for a request in flight",
    async () => {
      await using system = await startSystem({ workers: { db: 1 }, apiAuth: false, sandbox: false });
      await using api = await ownApi(system, { SHUTDOWN_GRACE_MS: "60000", BODY_TIMEOUT_MS: "600000" });
      const held = await holdRequest(api.url);
      api.kill("SIGTERM");
      await waitFor(() => api.output().includes("stopping: draining") || undefined, { message: "draining" });
      const second = Date.now();
      api.kill("SIGTERM");
      expect(await api.exited).toBe(130);
      expect(Date.now() - second).toBeLessThan(5_000);
      expect(api.output()).toContain("second signal: exiting at once");
      held.socket.end();
    },
    E2E_TIMEOUT,
  );
});
