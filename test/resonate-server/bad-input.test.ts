import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { PROTOCOL_VERSION, type ResonateServer, startResonateServer } from "../../harness/index.ts";
import { requireCapability } from "../support/capability.ts";
import { jsonInit } from "../support/http.ts";
import { E2E_TIMEOUT } from "../support/processes.ts";

const head = { corrId: "c-1", version: PROTOCOL_VERSION };
const far = () => Date.now() + 3_600_000;

let server: ResonateServer;
beforeAll(async () => {
  server = await startResonateServer({ debug: true });
}, E2E_TIMEOUT);
afterAll(async () => {
  await server.stop();
}, E2E_TIMEOUT);

async function post(body: string | object) {
  const res = await fetch(server.url, jsonInit("POST", body));
  return {
    status: res.status,
    body: (await res.json()) as { kind: string; head: { corrId: string; status: number }; data: unknown },
  };
}

const create = (id: string, tags: Record<string, string> = {}) => ({
  kind: "promise.create",
  head,
  data: { id, timeoutAt: far(), param: {}, tags },
});

/** A serde error text as either server gives it: the real one appends where in the body it stopped. */
const serde = (text: string) =>
  new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}( at line \\d+ column \\d+)?$`);

/**
 * Each case: the request, the status, the message both servers give (the
 * real one's where ours copies it) and, where the real server's serde text
 * differs from ours, our exact text.
 */
const cases: [string, string | object, number, string | RegExp, string?][] = [
  ["malformed JSON", "{not json", 400, /^Invalid request envelope: /],
  [
    "a JSON array",
    "[1,2]",
    400,
    /^Invalid request envelope: /,
    "Invalid request envelope: expected a JSON object",
  ],
  ["a missing kind", { head, data: {} }, 400, serde("Invalid request envelope: missing field `kind`")],
  [
    "an empty kind",
    { kind: "", head, data: {} },
    400,
    "Missing or invalid 'kind' field — must be a non-empty string",
  ],
  ["an unknown kind", { kind: "promise.explode", head, data: {} }, 400, "Unknown operation: promise.explode"],
  [
    "a missing head",
    { kind: "promise.get", data: { id: "x" } },
    400,
    serde("Invalid request envelope: missing field `head`"),
  ],
  [
    "data that is not an object",
    { kind: "promise.get", head, data: [] },
    400,
    "Invalid 'data' field — must be an object",
  ],
  [
    "an unsupported protocol version",
    { kind: "promise.get", head: { corrId: "c", version: "2020-01-01" }, data: { id: "x" } },
    400,
    `Unsupported protocol version '2020-01-01', supported versions: ["${PROTOCOL_VERSION}"]`,
  ],
  [
    "a missing id",
    { kind: "promise.create", head, data: { timeoutAt: 1 } },
    400,
    serde("Invalid request: missing field `id`"),
  ],
  ["an empty id", create(""), 400, "Promise ID is required"],
  ["a NUL byte in an id", create("bad\u0000id"), 400, "Promise ID must not contain null bytes"],
  [
    "a negative timeoutAt",
    { ...create("neg"), data: { id: "neg", timeoutAt: -1, tags: {} } },
    400,
    "TimeoutAt must be a non-negative integer",
  ],
  [
    "tags that are not strings",
    { ...create("t"), data: { id: "t", timeoutAt: far(), tags: { a: 1 } } },
    400,
    /^Invalid request: /,
    "Invalid request: `tags` must map strings to strings",
  ],
  [
    "an unroutable target",
    create("u", { "resonate:target": "carrier-pigeon" }),
    400,
    "Invalid resonate:target address",
  ],
  [
    "a settle to an unknown state",
    { kind: "promise.settle", head, data: { id: "x", state: "maybe", value: {} } },
    400,
    /^Invalid request: .*one of `?resolved`?, `?rejected`?, `?rejected_canceled`?$/,
    "Invalid request: `state` must be one of resolved, rejected, rejected_canceled",
  ],
  [
    "a task without a ttl",
    { kind: "task.acquire", head, data: { id: "x", version: 0, pid: "p", ttl: 0 } },
    400,
    "TTL must be a positive integer",
  ],
  [
    "a task.create without a target",
    { kind: "task.create", head, data: { pid: "p", ttl: 1000, action: create("nt") } },
    400,
    "Action must have a resonate:target tag",
  ],
  [
    "a callback on itself",
    { kind: "promise.register_callback", head, data: { awaited: "x", awaiter: "x" } },
    400,
    "Awaited and awaiter must be different promises",
  ],
];

/**
 * Promise ids that do not fit their lineage tags: our server (like the real
 * server's later main) refuses them; the real v0.9.8 accepts them as they are.
 */
const lineageCases: [string, object, string][] = [
  [
    "a '.' in a lineage origin",
    create("a.b.1", { "resonate:origin": "a.b" }),
    "resonate:origin must not contain '.'",
  ],
  [
    "an id outside its origin",
    create("other.1", { "resonate:origin": "root" }),
    "Promise ID must be prefixed by resonate:origin",
  ],
  [
    "an id outside its parent",
    create("root.7", { "resonate:origin": "root", "resonate:parent": "root.3" }),
    "Promise ID must be prefixed by resonate:parent",
  ],
  [
    "an id outside its branch",
    create("root.7", { "resonate:origin": "root", "resonate:branch": "root.3" }),
    "Promise ID must be prefixed by resonate:branch",
  ],
];

describe("resonate server: bad input gets the real server's status and message and changes nothing", () => {
  for (const [what, body, status, message, ours] of cases) {
    test(`rejects ${what}`, async () => {
      const reply = await post(body);
      expect(reply.status).toBe(status);
      expect(reply.body.head.status).toBe(status);
      if (typeof message === "string") expect(reply.body.data).toBe(message);
      else expect(String(reply.body.data)).toMatch(message);
    });
    if (ours !== undefined) {
      requireCapability("errorTexts")(`rejects ${what} with our own text`, async () => {
        expect((await post(body)).body.data).toBe(ours);
      });
    }
  }

  for (const [what, body, message] of lineageCases) {
    requireCapability("lineage")(`rejects ${what}`, async () => {
      const reply = await post(body);
      expect(reply.status).toBe(400);
      expect(reply.body.head.status).toBe(400);
      expect(reply.body.data).toBe(message);
    });
  }

  test("echoes the kind and corrId it could read, and falls back to unknown/0", async () => {
    expect((await post({ kind: "promise.explode", head, data: {} })).body).toMatchObject({
      kind: "promise.explode",
      head: { corrId: "c-1", status: 400 },
    });
    expect((await post("{")).body).toMatchObject({ kind: "unknown", head: { corrId: "0", status: 400 } });
  });

  requireCapability("bodyLimit")("rejects a body over 1 MiB with 413 before parsing it", async () => {
    const big = JSON.stringify(create("big")).replace(
      '"param":{}',
      `"param":{"data":"${"A".repeat(1_100_000)}"}`,
    );
    const reply = await post(big);
    expect(reply.status).toBe(413);
    expect(reply.body.data).toBe("Request body exceeds the limit of 1048576 bytes");
  });

  requireCapability("bodyLimit")(
    "rejects a chunked body (no content-length) that ends up over 1 MiB with 413",
    async () => {
      const big = new TextEncoder().encode(
        JSON.stringify(create("big-chunked")).replace(
          '"param":{}',
          `"param":{"data":"${"A".repeat(1_100_000)}"}`,
        ),
      );
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          for (let at = 0; at < big.length; at += 64 * 1024)
            controller.enqueue(big.subarray(at, at + 64 * 1024));
          controller.close();
        },
      });
      const res = await fetch(server.url, { method: "POST", body });
      expect(res.status).toBe(413);
      expect(((await res.json()) as { data: string }).data).toBe(
        "Request body exceeds the limit of 1048576 bytes",
      );
    },
  );

  test(
    "refuses debug requests unless started with --debug",
    async () => {
      await using plain = await startResonateServer();
      const res = await fetch(plain.url, {
        method: "POST",
        body: JSON.stringify({ kind: "debug.reset", head, data: {} }),
      });
      expect(res.status).toBe(403);
      expect(((await res.json()) as { data: string }).data).toBe("Debug operations are disabled");
    },
    E2E_TIMEOUT,
  );

  test("answers unknown routes with 404 and the old REST routes with 410", async () => {
    expect((await fetch(`${server.url}/nope`)).status).toBe(404);
    expect((await fetch(`${server.url}/promises/x`)).status).toBe(410);
    expect((await fetch(server.url)).status).toBe(405);
  });

  test("after all of the above it still serves, and none of the rejected promises exists", async () => {
    const snap = await post({ kind: "debug.snap", head, data: {} });
    expect(snap.status).toBe(200);
    expect((snap.body.data as { promises: unknown[] }).promises).toEqual([]);
    const ok = await post(create("fine"));
    expect(ok.status).toBe(200);
    expect((ok.body.data as { promise: { id: string; state: string } }).promise).toMatchObject({
      id: "fine",
      state: "pending",
    });
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
  });
});
