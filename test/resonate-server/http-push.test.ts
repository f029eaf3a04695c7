/**
 * HTTP push: a message whose address is an `http(s)://` URL is POSTed there
 * by the delivery loop, once, one push after the other, as the real server
 * v0.9.8 does. Each test runs on the real server too (`RESONATE_BIN`) but
 * those that read our server's own log lines or refusals, which start ours.
 */
import { describe, expect, test } from "bun:test";
import { resolve } from "node:path";
import { type PromiseRecord, protocolCall, startResonateServer, waitFor } from "../../harness/index.ts";
import { E2E_TIMEOUT, openMessageStream, runId } from "../support/processes.ts";
import { tempDbPaths } from "../support/temp.ts";

const SERVER_MAIN = resolve(import.meta.dir, "../../harness/resonate-server/main.ts");

/** What a push target received: one POST. */
interface Push {
  method: string;
  path: string;
  headers: Headers;
  body: { kind: string; head: unknown; data: { promise?: PromiseRecord } };
}

/**
 * A push target on a free port: records every request, then answers as
 * `answer` says (204 by default). `url(path)` is an address to push to.
 */
function startReceiver(
  answer: (push: Push) => Response | Promise<Response> = () => new Response(null, { status: 204 }),
) {
  const pushes: Push[] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: async (req) => {
      const push: Push = {
        method: req.method,
        path: new URL(req.url).pathname,
        headers: req.headers,
        body: (await req.json()) as Push["body"],
      };
      pushes.push(push);
      return answer(push);
    },
  });
  return {
    pushes,
    url: (path: string) => `http://127.0.0.1:${server.port}${path}`,
    /** The pushes of the unblock for promise `id`. */
    unblocks: (id: string) => pushes.filter((p) => p.body.data.promise?.id === id),
    [Symbol.asyncDispose]: () => server.stop(true),
  };
}

const far = () => Date.now() + 60_000;

/** Creates promise `id` and registers a listener for it at `address`; resolves with the registration's reply. */
async function listen(server: { url: string }, id: string, address: string) {
  const created = await protocolCall(server.url, "promise.create", {
    id,
    timeoutAt: far(),
    param: {},
    tags: {},
  });
  expect(created.status).toBe(200);
  return protocolCall(server.url, "promise.register_listener", { awaited: id, address });
}

/** Resolves promise `id` and returns it as the settle answered it. */
async function settle(server: { url: string }, id: string): Promise<PromiseRecord> {
  const reply = await protocolCall<{ promise: PromiseRecord }>(server.url, "promise.settle", {
    id,
    state: "resolved",
    value: { headers: {}, data: btoa(JSON.stringify({ id })) },
  });
  expect(reply.status).toBe(200);
  return reply.body.data.promise;
}

/** Registers a listener at the receiver's `/hook` for a fresh promise, settles it, and waits for the push of its unblock. */
async function pushedUnblock(server: { url: string }, receiver: ReturnType<typeof startReceiver>) {
  const id = `push:${runId()}`;
  expect((await listen(server, id, receiver.url("/hook"))).status).toBe(200);
  await settle(server, id);
  const [push] = await waitFor(() => receiver.unblocks(id).length > 0 && receiver.unblocks(id), {
    timeout: 1_500,
    message: "the unblock pushed",
  });
  if (!push) throw new Error(`no push for ${id}`);
  return push;
}

/** `resonate_deliveries_total` by status, from a server's metrics page. */
async function deliveries(metricsUrl: string): Promise<{ success: number; error: number }> {
  const text = await (await fetch(metricsUrl)).text();
  const count = (status: string) =>
    Number(
      new RegExp(`^resonate_deliveries_total\\{status="${status}"\\} (\\S+)$`, "m").exec(text)?.[1] ?? 0,
    );
  return { success: count("success"), error: count("error") };
}

describe("resonate server: HTTP push to http(s) addresses", () => {
  test(
    "a listener at an http:// address gets the unblock POSTed there as JSON once the promise is settled",
    async () => {
      await using receiver = startReceiver();
      await using server = await startResonateServer();
      const id = `push:${runId()}`;
      const registered = await listen(server, id, receiver.url("/hooks/unblock"));
      expect(registered.status).toBe(200);
      expect(receiver.pushes).toEqual([]);

      const settled = await settle(server, id);
      await waitFor(() => receiver.pushes.length > 0, { timeout: 1_500, message: "the unblock pushed" });
      const [push] = receiver.pushes as [Push];
      expect({ method: push.method, path: push.path, body: push.body }).toEqual({
        method: "POST",
        path: "/hooks/unblock",
        body: { kind: "unblock", head: {}, data: { promise: settled } },
      });
      expect(push.headers.get("content-type")).toBe("application/json");
      expect(push.headers.get("authorization")).toBeNull();
    },
    E2E_TIMEOUT,
  );

  test(
    "with --transports-http-push-auth-mode bearer each push carries Authorization: Bearer <token>",
    async () => {
      await using receiver = startReceiver();
      await using server = await startResonateServer({ push: { token: "t" } });
      const push = await pushedUnblock(server, receiver);
      expect(push.headers.get("authorization")).toBe("Bearer t");
    },
    E2E_TIMEOUT,
  );

  test(
    "with --transports-http-push-auth-header the token goes in that header and no Authorization is sent",
    async () => {
      await using receiver = startReceiver();
      await using server = await startResonateServer({ push: { token: "t", header: "X-Push-Token" } });
      const push = await pushedUnblock(server, receiver);
      expect(push.headers.get("x-push-token")).toBe("Bearer t");
      expect(push.headers.get("authorization")).toBeNull();
    },
    E2E_TIMEOUT,
  );

  test(
    "a push the target answers with 500 is counted as failed and not sent again",
    async () => {
      await using receiver = startReceiver((push) =>
        push.path === "/fail" ? new Response("no", { status: 500 }) : new Response(null, { status: 204 }),
      );
      await using server = await startResonateServer({ metrics: true });
      const run = runId();
      const failing = `push:${run}-fail`;
      const later = `push:${run}-later`;
      expect((await listen(server, failing, receiver.url("/fail"))).status).toBe(200);
      expect((await listen(server, later, receiver.url("/ok"))).status).toBe(200);

      await settle(server, failing);
      await waitFor(() => receiver.unblocks(failing).length > 0, {
        timeout: 1_500,
        message: "the first push",
      });
      // Settled only once the first push was answered 500: a retry of it would be queued before this
      // message, and messages go out in order, so once this one is in, a retry would be too.
      await settle(server, later);
      await waitFor(() => receiver.unblocks(later).length > 0, { timeout: 1_500, message: "the later push" });
      expect(receiver.pushes.map((p) => p.path)).toEqual(["/fail", "/ok"]);
      const metricsUrl = server.metricsUrl as string;
      await waitFor(
        async () => {
          expect(await deliveries(metricsUrl)).toEqual({ success: 1, error: 1 });
          return true;
        },
        { timeout: 1_500, message: "one delivery counted as success and one as error" },
      );
    },
    E2E_TIMEOUT,
  );

  test(
    "a push that outlasts --transports-http-push-request-timeout is given up, logged and not sent again",
    async () => {
      await using receiver = startReceiver(async (push) => {
        if (push.path === "/hang") await Bun.sleep(1_000);
        return new Response(null, { status: 204 });
      });
      // Our server's log line is asserted below: the real one words it otherwise.
      await using server = await startResonateServer({ kind: "harness", push: { requestTimeoutMs: 200 } });
      const run = runId();
      const hanging = `push:${run}-hang`;
      const later = `push:${run}-later`;
      expect((await listen(server, hanging, receiver.url("/hang"))).status).toBe(200);
      expect((await listen(server, later, receiver.url("/ok"))).status).toBe(200);
      await settle(server, hanging);
      await settle(server, later);
      await waitFor(() => receiver.unblocks(later).length > 0, { timeout: 1_500, message: "the later push" });
      expect(receiver.pushes.map((p) => p.path)).toEqual(["/hang", "/ok"]);
      expect(server.process.output()).toContain(
        `HTTP push delivery failed (address ${receiver.url("/hang")}, timeout)`,
      );
    },
    E2E_TIMEOUT,
  );

  test(
    "a slow push target delays a message to a poll:// stream settled after it: pushes are sent in sequence",
    async () => {
      const SLOW_MS = 300;
      let slowAnsweredAt = Number.POSITIVE_INFINITY;
      await using receiver = startReceiver(async () => {
        await Bun.sleep(SLOW_MS);
        slowAnsweredAt = performance.now();
        return new Response(null, { status: 204 });
      });
      await using server = await startResonateServer();
      const run = runId();
      const pushed = `push:${run}-slow`;
      const streamed = `push:${run}-stream`;
      let streamedAt: number | undefined;
      const stream = await openMessageStream(server, "push-seq", "p1", (message) => {
        const m = message as Push["body"];
        if (m.kind === "unblock" && m.data.promise?.id === streamed) streamedAt = performance.now();
      });
      try {
        expect((await listen(server, pushed, receiver.url("/slow"))).status).toBe(200);
        expect((await listen(server, streamed, "poll://uni@push-seq/p1")).status).toBe(200);
        const settledAt = performance.now();
        await settle(server, pushed);
        await settle(server, streamed);
        const arrived = await waitFor(() => streamedAt, { timeout: 1_500, message: "the stream's unblock" });
        expect(receiver.unblocks(pushed)).toHaveLength(1);
        expect(arrived).toBeGreaterThanOrEqual(slowAnsweredAt);
        expect(arrived - settledAt).toBeGreaterThanOrEqual(SLOW_MS);
      } finally {
        stream.close();
      }
    },
    E2E_TIMEOUT,
  );

  test(
    "an address of another scheme (gcps://p/t, ftp://x) is still refused, as a listener and as a target",
    async () => {
      // The real server v0.9.8 accepts gcps:// (and drops its messages: its Pub/Sub transport is off by default).
      await using server = await startResonateServer({ kind: "harness" });
      for (const address of ["gcps://p/t", "ftp://x"]) {
        const listener = await listen(server, `push:${runId()}`, address);
        expect({ status: listener.status, data: listener.body.data }).toEqual({
          status: 400,
          data: "Invalid listener address",
        });
        const target = await protocolCall(server.url, "promise.create", {
          id: `push:${runId()}`,
          timeoutAt: far(),
          param: {},
          tags: { "resonate:target": address },
        });
        expect({ status: target.status, data: target.body.data }).toEqual({
          status: 400,
          data: "Invalid resonate:target address",
        });
      }
    },
    E2E_TIMEOUT,
  );

  test(
    "with --transports-http-push-enabled false an http address is accepted and its message dropped",
    async () => {
      await using receiver = startReceiver();
      // Our server's log line is asserted below: the real one words it otherwise.
      await using server = await startResonateServer({ kind: "harness", push: { enabled: false } });
      const run = runId();
      const pushed = `push:${run}-dropped`;
      const streamed = `push:${run}-stream`;
      let streamedArrived = false;
      const stream = await openMessageStream(server, "push-off", "p1", (message) => {
        if ((message as Push["body"]).data.promise?.id === streamed) streamedArrived = true;
      });
      try {
        expect((await listen(server, pushed, receiver.url("/hook"))).status).toBe(200);
        expect((await listen(server, streamed, "poll://uni@push-off/p1")).status).toBe(200);
        await settle(server, pushed);
        // Queued after the dropped one: once it is in, the dropped one was taken and not pushed.
        await settle(server, streamed);
        await waitFor(() => streamedArrived, { timeout: 1_500, message: "the stream's unblock" });
        expect(receiver.pushes).toEqual([]);
        await waitFor(
          () => server.process.output().includes("HTTP push transport disabled, message dropped"),
          {
            timeout: 1_500,
            message: "the warning",
          },
        );
      } finally {
        stream.close();
      }
    },
    E2E_TIMEOUT,
  );
});

describe("resonate server: HTTP push flags", () => {
  const dbPath = tempDbPaths("http-push-flags-");
  const refused: [string[], string][] = [
    [
      ["--transports-http-push-enabled", "yes"],
      `--transports-http-push-enabled must be one of true, false, got "yes"`,
    ],
    [
      ["--transports-http-push-auth-mode", "gcp"],
      "--transports-http-push-auth-mode gcp (a Google ID token per push) is not supported by this server",
    ],
    [
      ["--transports-http-push-auth-mode", "basic"],
      `--transports-http-push-auth-mode must be one of none, bearer, got "basic"`,
    ],
    [
      ["--transports-http-push-auth-mode", "bearer"],
      "--transports-http-push-auth-mode bearer needs --transports-http-push-auth-token <token>",
    ],
    [
      ["--transports-http-push-auth-token", "t"],
      "--transports-http-push-auth-token and --transports-http-push-auth-header need --transports-http-push-auth-mode bearer",
    ],
    [
      ["--transports-http-push-request-timeout", "0"],
      `--transports-http-push-request-timeout must be a positive number of milliseconds, got "0"`,
    ],
  ];
  for (const [flags, message] of refused) {
    test(`${flags.join(" ")} is refused with exit 2 and a message`, () => {
      const run = Bun.spawnSync([process.execPath, SERVER_MAIN, "--port", "0", "--db", dbPath(), ...flags]);
      expect(run.exitCode).toBe(2);
      expect(run.stderr.toString()).toContain(message);
    });
  }
});
