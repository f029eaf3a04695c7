import { afterEach, describe, expect, test } from "bun:test";
import type { Message } from "@resonatehq/sdk";
import { ResonateTimeoutException } from "@resonatehq/sdk";
import type { Socket } from "bun";
import {
  EventStreamParser,
  HttpClient,
  HttpClientError,
  openEventStream,
  type ServerSentEvent,
} from "../../core/resonate/http-client.ts";
import { SocketNetwork, type SocketNetworkOptions } from "../../core/resonate/network.ts";
import { fetchTransport, socketTransport } from "../../core/resonate/transport.ts";
import { startResonateServer, waitFor } from "../../harness/index.ts";
import { PROTOCOL_VERSION } from "../../harness/resonate-server/validate.ts";

const stops: (() => unknown)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
});

/** A Bun.serve on port 0, stopped after the test. */
function serve(fetch: (req: Request, server: Bun.Server<undefined>) => Response | Promise<Response>) {
  const server = Bun.serve({ port: 0, idleTimeout: 0, fetch });
  stops.push(() => server.stop(true));
  return server;
}

/** A raw TCP server on port 0 that answers each request with what `reply` writes, stopped after the test. */
function rawServer(reply: (socket: Socket<{ n: number }>, request: string, n: number) => void) {
  let count = 0;
  const listener = Bun.listen<{ n: number }>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open: (socket) => {
        socket.data = { n: 0 };
      },
      data: (socket, bytes) => {
        const text = bytes.toString();
        if (text.includes("\r\n\r\n")) reply(socket, text, count++);
      },
    },
  });
  stops.push(() => listener.stop(true));
  return listener;
}

/** An unblock message for promise `id`, as a Resonate server sends it. */
function unblockJson(id: string): string {
  return JSON.stringify({
    kind: "unblock",
    head: {},
    data: { promise: { id, state: "resolved", param: {}, value: {}, tags: {}, timeoutAt: 1, createdAt: 0 } },
  });
}

/** A SocketNetwork (group g, pid p) to a local server, stopped after the test. */
function networkTo(port: number | undefined, opts: Partial<SocketNetworkOptions> = {}): SocketNetwork {
  const network = new SocketNetwork({
    url: `http://127.0.0.1:${port}`,
    group: "g",
    pid: "p",
    timeoutMs: 2_000,
    ...opts,
  });
  stops.push(() => network.stop());
  return network;
}

function client(url: string): HttpClient {
  const c = new HttpClient(new URL(url));
  stops.push(() => c.close());
  return c;
}

describe("HttpClient", () => {
  test("posts JSON and reads the answer, reusing one kept-alive connection for sequential requests", async () => {
    const ports: number[] = [];
    const server = serve(async (req, srv) => {
      ports.push(srv.requestIP(req)?.port ?? -1);
      return Response.json({ got: await req.json(), path: new URL(req.url).pathname });
    });
    const c = client(`http://127.0.0.1:${server.port}`);
    for (let i = 0; i < 3; i++) {
      const res = await c.request(
        "POST",
        "/x?y=1",
        { "content-type": "application/json" },
        `{"i":${i}}`,
        5_000,
      );
      expect(res.status).toBe(200);
      expect(JSON.parse(res.body)).toEqual({ got: { i }, path: "/x" });
    }
    expect(new Set(ports).size).toBe(1);
  });

  test("runs concurrent requests on separate connections", async () => {
    const ports = new Set<number>();
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const server = serve(async (req, srv) => {
      ports.add(srv.requestIP(req)?.port ?? -1);
      if (ports.size === 3) release();
      await gate;
      return new Response(await req.text());
    });
    const c = client(`http://127.0.0.1:${server.port}`);
    const answers = await Promise.all([1, 2, 3].map((i) => c.request("POST", "/", {}, `${i}`, 5_000)));
    expect(answers.map((a) => a.body)).toEqual(["1", "2", "3"]);
    expect(ports.size).toBe(3);
  });

  test("sends and receives bodies larger than a socket buffer", async () => {
    const server = serve(async (req) => new Response((await req.text()).toUpperCase()));
    const body = "ab".repeat(1024 * 1024);
    const res = await client(`http://127.0.0.1:${server.port}`).request("POST", "/", {}, body, 10_000);
    expect(res.body.length).toBe(body.length);
    expect(res.body).toBe(body.toUpperCase());
  });

  test("decodes a chunked answer split across writes, with a trailer", async () => {
    const server = rawServer((socket) => {
      const parts = [
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel",
        "lo\r\n8;ext=1\r\n, w\u00f6rld\r\n0\r\nx-trailer: 1\r",
        "\n\r\n",
      ];
      for (const [i, part] of parts.entries()) setTimeout(() => socket.write(part), i * 5);
    });
    const res = await client(`http://127.0.0.1:${server.port}`).request("GET", "/", {}, "", 5_000);
    expect(res.body).toBe("hello, w\u00f6rld");
  });

  test("retries once on a new connection when a kept-alive one was closed by the server before answering", async () => {
    const server = rawServer((socket, _request, n) => {
      if (n === 1) {
        socket.end();
        return;
      }
      socket.write(`HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\n${n}`);
    });
    const c = client(`http://127.0.0.1:${server.port}`);
    expect((await c.request("POST", "/", {}, "a", 5_000)).body).toBe("0");
    expect((await c.request("POST", "/", {}, "b", 5_000)).body).toBe("2");
  });

  test("reads a body that runs to the close, skips an interim 100, and drops a connection that sent extra bytes", async () => {
    const ports: number[] = [];
    const server = rawServer((socket, request) => {
      ports.push(socket.remotePort);
      if (request.startsWith("GET /close")) {
        socket.write("HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the ");
        setTimeout(() => socket.end("end"), 5);
      } else if (request.startsWith("GET /continue")) {
        socket.write("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
      } else {
        socket.write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok\r\n");
      }
    });
    const c = client(`http://127.0.0.1:${server.port}`);
    expect((await c.request("GET", "/close", {}, "", 5_000)).body).toBe("until the end");
    expect((await c.request("GET", "/continue", {}, "", 5_000)).body).toBe("ok");
    expect((await c.request("GET", "/junk", {}, "", 5_000)).body).toBe("ok");
    expect((await c.request("GET", "/continue", {}, "", 5_000)).body).toBe("ok");
    // /close and /junk end their connections; /continue's is reused once.
    expect(ports[2]).toBe(ports[1]);
    expect(ports[3]).not.toBe(ports[2]);
  });

  test("a connection answered before the server read the whole request is not reused", async () => {
    // Refuses a large body from its content-length, without reading it.
    const server = serve(async (req) =>
      Number(req.headers.get("content-length")) > 1024
        ? new Response("too large", { status: 413 })
        : new Response(`small ${(await req.text()).length}`),
    );
    const c = client(`http://127.0.0.1:${server.port}`);
    const big = await c
      .request("POST", "/", {}, "x".repeat(8 * 1024 * 1024), 5_000)
      .then((res) => res.status)
      .catch((e: unknown) => e);
    // Answered 413 early, or cut off while still sending: either way the next request gets a clean connection.
    if (!(big instanceof Error)) expect(big).toBe(413);
    expect((await c.request("POST", "/", {}, "tiny", 5_000)).body).toBe("small 4");
  });

  test("a connection the server closes mid-answer is an error, not a retry", async () => {
    const server = rawServer((socket) => {
      socket.write("HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc");
      setTimeout(() => socket.end(), 5);
    });
    const c = client(`http://127.0.0.1:${server.port}`);
    expect(c.request("POST", "/", {}, "a", 5_000)).rejects.toThrow("closed before the response ended");
  });

  test("an answer that is not HTTP/1.1 is an error", async () => {
    const server = rawServer((socket) => {
      socket.write("SSH-2.0-OpenSSH\r\n\r\n");
    });
    const c = client(`http://127.0.0.1:${server.port}`);
    expect(c.request("GET", "/", {}, "", 5_000)).rejects.toThrow("not an HTTP/1.1 response");
  });

  test("no answer within the timeout is an error, and the connection is not reused", async () => {
    let calls = 0;
    const server = rawServer((socket, _request, n) => {
      calls++;
      if (n > 0) socket.write("HTTP/1.1 204 No Content\r\n\r\n");
    });
    const c = client(`http://127.0.0.1:${server.port}`);
    const started = performance.now();
    const error = await c.request("POST", "/", {}, "a", 200).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HttpClientError);
    expect((error as Error).message).toContain("no response within");
    expect(performance.now() - started).toBeGreaterThanOrEqual(190);
    expect((await c.request("POST", "/", {}, "b", 5_000)).status).toBe(204);
    expect(calls).toBe(2);
  });

  test("a refused connection is an error", async () => {
    const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = listener.port;
    listener.stop(true);
    const c = client(`http://127.0.0.1:${port}`);
    expect(c.request("GET", "/", {}, "", 5_000)).rejects.toBeInstanceOf(HttpClientError);
  });
});

describe("EventStreamParser", () => {
  test("splits events on blank lines whatever the line endings and byte boundaries", () => {
    const events: ServerSentEvent[] = [];
    const parser = new EventStreamParser((e) => events.push(e));
    const text =
      ": keep-alive\n\ndata: one\n\ndata: two\r\ndata:  lines\r\n\r\nevent: other\rdata: \u00e9t\u00e9\r\rid: 7\ndata\n\n";
    const bytes = new TextEncoder().encode(text);
    for (let i = 0; i < bytes.length; i += 3) parser.feed(bytes.subarray(i, i + 3));
    expect(events).toEqual([
      { type: "message", data: "one" },
      { type: "message", data: "two\n lines" },
      { type: "other", data: "\u00e9t\u00e9" },
      { type: "message", data: "" },
    ]);
  });

  test("an event without its blank line is not dispatched", () => {
    const events: ServerSentEvent[] = [];
    const parser = new EventStreamParser((e) => events.push(e));
    parser.feed(new TextEncoder().encode("data: half"));
    expect(events).toEqual([]);
  });
});

describe("SocketNetwork", () => {
  const request = (corrId: string) => ({
    kind: "promise.get" as const,
    head: { corrId, version: PROTOCOL_VERSION },
    data: { id: "nope" },
  });

  for (const [name, transport] of [
    ["Bun's sockets", socketTransport],
    ["fetch (as on Deno)", fetchTransport],
  ] as const)
    test(`over ${name}: answers a protocol request from a Resonate server, and hands on the messages of its stream`, async () => {
      await using server = await startResonateServer();
      const messages: Message[] = [];
      const network = new SocketNetwork({
        url: server.url,
        group: "g",
        pid: "p1",
        timeoutMs: 5_000,
        transport: transport(new URL(server.url)),
      });
      stops.push(() => network.stop());
      network.recv((msg) => messages.push(msg));
      expect(network.unicast).toBe("poll://uni@g/p1");
      expect(network.anycast).toBe("poll://any@g/p1");
      expect(network.match("workers")).toBe("poll://any@workers");

      const missing = await network.send(request("c1"));
      expect(missing.head.status).toBe(404);
      expect(missing.head.corrId).toBe("c1");

      // A listener on a promise that is then settled: the unblock arrives on this pid's stream.
      const created = await network.send({
        kind: "promise.create",
        head: { corrId: "c2", version: PROTOCOL_VERSION },
        data: { id: "sn-1", timeoutAt: Date.now() + 60_000, param: { headers: {}, data: "" }, tags: {} },
      });
      expect(created.head.status).toBe(200);
      await waitFor(
        async () =>
          (
            await network.send({
              kind: "promise.register_listener",
              head: { corrId: "c3", version: PROTOCOL_VERSION },
              data: { awaited: "sn-1", address: network.unicast },
            })
          ).head.status === 200,
        { timeout: 5_000, message: "listener registered" },
      );
      await network.send({
        kind: "promise.settle",
        head: { corrId: "c4", version: PROTOCOL_VERSION },
        data: { id: "sn-1", state: "resolved", value: { headers: {}, data: "" } },
      });
      await waitFor(() => messages.length > 0, { timeout: 5_000, message: "unblock delivered" });
      expect(messages[0]?.kind).toBe("unblock");
      await network.opened;
    });

  test("a non-protocol status, a mismatched answer, and no server at all are platform failures", async () => {
    let answer: () => Response = () => new Response("boom", { status: 500 });
    const server = serve((req) =>
      new URL(req.url).pathname.startsWith("/poll/") ? new Response("no", { status: 503 }) : answer(),
    );
    const network = networkTo(server.port);
    expect(network.send(request("a"))).rejects.toThrow("HTTP 500");
    answer = () =>
      Response.json({
        kind: "promise.get",
        head: { corrId: "other", status: 200, version: PROTOCOL_VERSION },
        data: {},
      });
    expect(network.send(request("a"))).rejects.toThrow("response did not match request");
    answer = () => new Response("{not json", { status: 200 });
    expect(network.send(request("a"))).rejects.toThrow("failed to parse response JSON");
    answer = () => new Response("Not Found", { status: 404, headers: { "content-type": "text/plain" } });
    expect(network.send(request("a"))).rejects.toThrow("legacy server detected");

    await server.stop(true);
    const error = await network.send(request("a")).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ResonateTimeoutException);
    expect((error as Error).message).toContain("platform failure");
  });

  test("sends the token as a bearer header and in the envelope", async () => {
    const seen: { auth: string | null; head: unknown }[] = [];
    const server = serve(async (req) => {
      if (req.method === "GET") return new Response("no", { status: 503 });
      const body = (await req.json()) as { kind: string; head: { corrId: string } };
      seen.push({ auth: req.headers.get("authorization"), head: body.head });
      return Response.json({
        kind: body.kind,
        head: { corrId: body.head.corrId, status: 404, version: PROTOCOL_VERSION },
        data: "",
      });
    });
    const network = networkTo(server.port, { token: "t0k" });
    expect((await network.send(request("a"))).head.status).toBe(404);
    expect(seen).toEqual([
      { auth: "Bearer t0k", head: { corrId: "a", version: PROTOCOL_VERSION, auth: "t0k" } },
    ]);
  });

  test("a stream closed before its socket opened never sends its request", async () => {
    let polls = 0;
    const encoder = new TextEncoder();
    const server = serve(() => {
      polls++;
      return new Response(new ReadableStream({ start: (c) => c.enqueue(encoder.encode("data: hi\n\n")) }), {
        headers: { "content-type": "text/event-stream" },
      });
    });
    const url = new URL(`http://127.0.0.1:${server.port}/poll/g/p`);
    const early: ServerSentEvent[] = [];
    // A zero timeout closes the stream at once, before the connect completes.
    expect(openEventStream(url, {}, (e) => early.push(e), 0)).rejects.toThrow("no response");
    const events: ServerSentEvent[] = [];
    const stream = await openEventStream(url, {}, (e) => events.push(e), 5_000);
    stops.push(() => stream.close());
    await waitFor(() => events.length === 1, { timeout: 5_000, message: "event on the second stream" });
    expect(early).toEqual([]);
    expect(polls).toBe(1);
  });

  test("a receiver that throws costs neither the stream nor the messages after it", async () => {
    const warnings: string[] = [];
    const server = serve(
      () =>
        new Response(`data: ${unblockJson("a")}\n\ndata: ${unblockJson("b")}\n\n`, {
          headers: { "content-type": "text/event-stream" },
        }),
    );
    const network = networkTo(server.port, { warn: (m) => warnings.push(m) });
    const seen: string[] = [];
    network.recv((m) => {
      const id = m.kind === "unblock" ? m.data.promise.id : "?";
      seen.push(id);
      if (id === "a") throw new Error("receiver bug");
    });
    await waitFor(() => seen.length >= 2, { timeout: 5_000, message: "both messages received" });
    expect(seen.slice(0, 2)).toEqual(["a", "b"]);
    expect(warnings[0]).toBe("a receiver of unblock failed: Error: receiver bug");
  });

  for (const [name, transport] of [
    ["Bun's sockets", socketTransport],
    ["fetch (as on Deno)", fetchTransport],
  ] as const)
    test(`over ${name}: reopens a lost or refused message stream, says so, and ignores messages it cannot read`, async () => {
      const warnings: string[] = [];
      let opens = 0;
      const encoder = new TextEncoder();
      const unblock = unblockJson("x");
      const server = serve((req) => {
        if (!new URL(req.url).pathname.startsWith("/poll/g/p")) return new Response("?", { status: 404 });
        opens++;
        if (opens === 1) return new Response("not yet", { status: 503 });
        const first = opens === 2;
        return new Response(
          new ReadableStream({
            start(controller) {
              controller.enqueue(
                encoder.encode(`data: {bad\n\ndata: ${JSON.stringify({ kind: "nope" })}\n\n`),
              );
              controller.enqueue(encoder.encode(`event: other\ndata: ${unblock}\n\ndata: ${unblock}\n\n`));
              if (first) controller.close();
            },
          }),
          { headers: { "content-type": "text/event-stream" } },
        );
      });
      const network = networkTo(server.port, {
        warn: (m) => warnings.push(m),
        transport: transport(new URL(`http://127.0.0.1:${server.port}`)),
      });
      const messages: Message[] = [];
      network.recv((m) => messages.push(m));
      await waitFor(() => opens >= 3 && messages.length >= 2, {
        timeout: 10_000,
        message: "stream reopened twice",
      });
      expect(messages.map((m) => m.kind)).toEqual(["unblock", "unblock"]);
      expect(warnings.filter((w) => w.startsWith("message stream lost")).length).toBe(2);
      expect(warnings.filter((w) => w.startsWith("message that is not JSON")).length).toBe(2);
      expect(warnings.filter((w) => w.startsWith("message of unknown shape")).length).toBe(2);
    }, 15_000);
});
