import { afterAll, describe, expect, test } from "bun:test";
import { connect } from "node:net";
import { readAtMost } from "../../src/read-body.ts";

/**
 * `readAtMost` on the bodies a real server receives: each request below goes
 * over a socket to a Bun server on port 0, whose handler answers with what
 * `readAtMost` gave (`text:<body>`, `none` past the limit, `timeout`).
 */
const LIMIT = 16;
const TIMEOUT_MS = 300;

class Expired extends Error {}

const server = Bun.serve({
  port: 0,
  hostname: "127.0.0.1",
  async fetch(request) {
    try {
      const text = await readAtMost(request, LIMIT, { ms: TIMEOUT_MS, error: () => new Expired() });
      return new Response(text === undefined ? "none" : `text:${text}`);
    } catch (error) {
      return new Response(error instanceof Expired ? "timeout" : "error", {
        headers: { connection: "close" },
      });
    }
  },
});
afterAll(() => server.stop(true));

const url = `http://127.0.0.1:${server.port}/`;

/** Sends `head` and then `body` as raw bytes, and resolves with the answer's body once it arrives. */
function raw(head: string, body = ""): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port: Number(server.port) });
    let got = "";
    socket.on("connect", () => socket.write(`${head}\r\n\r\n${body}`));
    socket.on("data", (chunk) => {
      got += chunk.toString();
      const end = got.indexOf("\r\n\r\n");
      const length = /content-length: (\d+)/i.exec(got)?.[1];
      if (end !== -1 && length !== undefined && got.length >= end + 4 + Number(length)) {
        socket.destroy();
        resolve(got.slice(end + 4));
      }
    });
    socket.on("error", reject);
  });
}

describe("a body with a Content-Length", () => {
  test("within the limit is read whole, multi-byte characters included", async () => {
    const res = await fetch(url, { method: "POST", body: '{"a":"é"}' });
    expect(await res.text()).toBe('text:{"a":"é"}');
  });

  test("past the limit is refused from its header, before any of it arrives", async () => {
    const started = performance.now();
    const answer = await raw("POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 1000");
    expect(answer).toBe("none");
    expect(performance.now() - started).toBeLessThan(TIMEOUT_MS);
  });

  test("that does not arrive whole within the time given rejects with the caller's error", async () => {
    const answer = await raw("POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 10", "{");
    expect(answer).toBe("timeout");
  });
});

describe("a chunked body", () => {
  const stream = (...parts: string[]) =>
    new ReadableStream<Uint8Array>({
      start(controller) {
        for (const part of parts) controller.enqueue(new TextEncoder().encode(part));
        controller.close();
      },
    });

  test("within the limit is read whole", async () => {
    const res = await fetch(url, { method: "POST", body: stream('{"a":', "1}") });
    expect(await res.text()).toBe('text:{"a":1}');
  });

  test("is cut off at the first chunk past the limit", async () => {
    const res = await fetch(url, { method: "POST", body: stream("0123456789", "0123456789") });
    expect(await res.text()).toBe("none");
  });
});

test("a request without a body reads as empty", async () => {
  const res = await fetch(url, { method: "POST" });
  expect(await res.text()).toBe("text:");
});
