import { afterAll, beforeEach, describe, expect, test } from "bun:test";
import type { Message } from "@resonatehq/sdk";
import { type PushOutcome, pushAddress, pushReceiver } from "../../src/resonate/push.ts";

/**
 * The API's HTTP push listener, served over real HTTP: what the Resonate
 * server's POST of a message gets, and what every other request gets.
 */
const TOKEN = "push-token-0123456789";
const received: Message[] = [];
const outcomes: PushOutcome[] = [];
const warnings: string[] = [];
const server = Bun.serve({
  port: 0,
  hostname: "127.0.0.1",
  fetch: pushReceiver({
    pid: "api-7",
    token: TOKEN,
    maxBodyBytes: 4_096,
    receive: (message) => received.push(message),
    warn: (message) => warnings.push(message),
    counted: (outcome) => outcomes.push(outcome),
  }),
});
afterAll(() => server.stop(true));
beforeEach(() => {
  received.length = 0;
  outcomes.length = 0;
  warnings.length = 0;
});

const address = pushAddress("127.0.0.1", server.port as number, "api-7");
const unblock = {
  kind: "unblock",
  head: {},
  data: {
    promise: {
      id: "quote:abc",
      state: "resolved",
      param: { headers: {}, data: "" },
      value: { headers: {}, data: "eyJ0b3RhbCI6MX0=" },
      tags: {},
      timeoutAt: 1,
      createdAt: 0,
      settledAt: 1,
    },
  },
};
const post = (
  body: string | ReadableStream<Uint8Array>,
  headers: Record<string, string> = {},
  url = address,
) =>
  fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}`, ...headers },
    body,
  });

describe("the API's HTTP push listener", () => {
  test("its address names the host, the port and the pid, with an IPv6 host in brackets", () => {
    expect(address).toBe(`http://127.0.0.1:${server.port}/messages/api-7`);
    expect(pushAddress("::1", 9100, "api 1")).toBe("http://[::1]:9100/messages/api%201");
  });

  test("a message POSTed with the server's token is handed to the SDK and answered 204 at once", async () => {
    const res = await post(JSON.stringify(unblock));
    expect(res.status).toBe(204);
    expect(received).toEqual([unblock as unknown as Message]);
    expect(outcomes).toEqual(["delivered"]);
  });

  test("an execute message is handed on as well", async () => {
    const execute = {
      kind: "execute",
      head: { serverUrl: "http://r" },
      data: { task: { id: "t", version: 2 } },
    };
    expect((await post(JSON.stringify(execute))).status).toBe(204);
    expect(received).toEqual([execute as unknown as Message]);
  });

  const refusals: {
    name: string;
    send: () => Promise<Response>;
    status: number;
    outcome: PushOutcome;
    error: RegExp;
  }[] = [
    {
      name: "no token: 401 with WWW-Authenticate",
      send: () => post(JSON.stringify(unblock), { authorization: "" }),
      status: 401,
      outcome: "unauthorized",
      error: /bearer token/,
    },
    {
      name: "another token of the same length: 401",
      send: () => post(JSON.stringify(unblock), { authorization: `Bearer ${TOKEN.replace("0", "1")}` }),
      status: 401,
      outcome: "unauthorized",
      error: /bearer token/,
    },
    {
      name: "a body past the limit with no token: 401, before the body is read",
      send: () => post("x".repeat(100_000), { authorization: "" }),
      status: 401,
      outcome: "unauthorized",
      error: /bearer token/,
    },
    {
      name: "another pid's path (an address an earlier process left): 404",
      send: () => post(JSON.stringify(unblock), {}, address.replace("api-7", "api-6")),
      status: 404,
      outcome: "not_found",
      error: /no receiver at \/messages\/api-6/,
    },
    {
      name: "a GET: 405 with Allow: POST",
      send: () => fetch(address, { headers: { authorization: `Bearer ${TOKEN}` } }),
      status: 405,
      outcome: "not_found",
      error: /POSTed/,
    },
    {
      name: "a body past the limit: 413",
      send: () => post(JSON.stringify({ ...unblock, pad: "x".repeat(5_000) })),
      status: 413,
      outcome: "too_large",
      error: /at most 4096 bytes/,
    },
    {
      name: "a chunked body (no Content-Length) past the limit: 413, read no further",
      send: () =>
        post(
          new ReadableStream<Uint8Array>({
            start(controller) {
              for (let i = 0; i < 10; i++) controller.enqueue(new TextEncoder().encode("x".repeat(1_000)));
              controller.close();
            },
          }),
        ),
      status: 413,
      outcome: "too_large",
      error: /at most 4096 bytes/,
    },
    {
      name: "a body that is not JSON: 400",
      send: () => post("{not json"),
      status: 400,
      outcome: "invalid",
      error: /not JSON/,
    },
    {
      name: "JSON that is not a message: 422",
      send: () => post(JSON.stringify({ kind: "unblock", head: {}, data: {} })),
      status: 422,
      outcome: "invalid",
      error: /not a Resonate message/,
    },
  ];
  for (const { name, send, status, outcome, error } of refusals) {
    test(`refuses ${name}, with a JSON error, and hands nothing on`, async () => {
      const res = await send();
      expect(res.status).toBe(status);
      expect(res.headers.get("content-type")).toStartWith("application/json");
      expect(((await res.json()) as { error: string }).error).toMatch(error);
      if (status === 401) expect(res.headers.get("www-authenticate")).toBe("Bearer");
      if (status === 405) expect(res.headers.get("allow")).toBe("POST");
      expect(received).toEqual([]);
      expect(outcomes).toEqual([outcome]);
    });
  }
});
