/**
 * What a hostile client gets, from an API process on a real port: bodies
 * larger than the limit are refused before they are read (413, and the
 * process's memory stays where it was), error answers repeat only a short
 * prefix of an offending value, a body that trickles in is cut off (408,
 * connection closed) while well-behaved clients are still answered in time,
 * past the in-flight cap a request is refused at once (503), and tokens
 * that are missing, expired, for another audience, signed by another key or
 * for another user each get their status. Nothing is started or settled by
 * a rejected request.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect, type Socket } from "node:net";
import { API_AUTH_DEFAULTS } from "../../harness/api-auth.ts";
import { type System, startSystem, waitFor } from "../../harness/index.ts";
import { generateAuthKeys, signToken } from "../../harness/jwt.ts";
import { bearer, defaultAuthorization, TEST_API_AUTH } from "../support/api-auth.ts";
import { withAuthorization } from "../support/http.ts";
import { E2E_TIMEOUT } from "../support/processes.ts";
import { signedHeaders, WRONG_SECRET } from "../support/secrets.ts";

const LIMIT = 65_536;
const BODY_TIMEOUT_MS = 1_500;

/**
 * Opens a connection that sends a request's head (with a caller's token: a
 * checked route reads no body without one) and then one body byte every
 * `everyMs`; `received` is what came back so far.
 */
function trickle(
  url: string,
  path: string,
  everyMs: number,
  authorization: string,
): { socket: Socket; answer: Promise<string>; received: () => string } {
  const { hostname, port } = new URL(url);
  const socket = connect({ host: hostname, port: Number(port) });
  let answer = "";
  let timer: ReturnType<typeof setInterval> | undefined;
  socket.on("connect", () => {
    socket.write(
      `POST ${path} HTTP/1.1\r\nhost: ${hostname}\r\nauthorization: ${authorization}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{`,
    );
    timer = setInterval(() => socket.write(" "), everyMs);
  });
  const done = new Promise<string>((resolve) => {
    socket.on("data", (chunk) => {
      answer += chunk.toString();
    });
    socket.on("close", () => {
      clearInterval(timer);
      resolve(answer);
    });
    socket.on("error", () => {});
  });
  return { socket, answer: done, received: () => answer };
}

let system: System;
const api = () => system.apiUrl;
/** A POST with the tests' default token for `path`, unless `headers` name an `authorization` (`""`: none). */
const post = async (path: string, body: string | Uint8Array, headers: Record<string, string> = {}) =>
  fetch(`${api()}${path}`, {
    method: "POST",
    headers: await withAuthorization(path, { "content-type": "application/json", ...headers }),
    body,
  });
/** A GET with the tests' default token (an operator's, who sees every job). */
const get = async (path: string) => fetch(`${api()}${path}`, { headers: await withAuthorization(path, {}) });
const rss = async () => ((await (await get("/bench/stats")).json()) as { rss: number }).rss;

beforeAll(async () => {
  system = await startSystem({
    mode: "colocated",
    apiPort: 0,
    apiAuth: TEST_API_AUTH,
    apiEnv: { BENCH_ROUTES: "1", BODY_LIMIT_BYTES: String(LIMIT), BODY_TIMEOUT_MS: String(BODY_TIMEOUT_MS) },
  });
}, E2E_TIMEOUT);
afterAll(() => system?.stop(), E2E_TIMEOUT);

describe("bodies larger than the limit", () => {
  test(
    "ten concurrent 12 MB bodies each get a 413 fast, and the API's memory stays where it was",
    async () => {
      const before = await rss();
      const body = new Uint8Array(12 * 2 ** 20).fill(0x20);
      const started = performance.now();
      const answers = await Promise.all(
        Array.from({ length: 10 }, async () => {
          const res = await post("/price-quote", body);
          return { status: res.status, body: await res.json() };
        }),
      );
      const elapsed = performance.now() - started;
      for (const answer of answers) {
        expect(answer).toEqual({
          status: 413,
          body: {
            error: { code: "body_too_large", message: `the request body must be at most ${LIMIT} bytes` },
          },
        });
      }
      // 120 MB sent; none of it held: a few MB of slack for the allocator.
      expect((await rss()) - before).toBeLessThan(8 * 2 ** 20);
      expect(elapsed).toBeLessThan(5_000);
    },
    E2E_TIMEOUT,
  );

  test("a chunked body is cut off at the limit while it arrives", async () => {
    const chunks = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 20; i++) controller.enqueue(new Uint8Array(2 ** 20).fill(0x20));
        controller.close();
      },
    });
    const res = await fetch(`${api()}/jobs`, {
      method: "POST",
      headers: await withAuthorization("/jobs", { "content-type": "application/json" }),
      body: chunks,
      duplex: "half",
    } as RequestInit);
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("body_too_large");
  });

  test("a webhook's size is checked before its signature, and nothing is settled", async () => {
    const body = JSON.stringify({ approved: true, reason: "x".repeat(LIMIT) });
    const res = await post("/webhooks/approval/hostile-1", body, signedHeaders(body, WRONG_SECRET));
    expect(res.status).toBe(413);
    const job = await get("/jobs/ship:hostile-1");
    expect(job.status).toBe(404);
  });

  test("a body just under the limit is read as usual", async () => {
    const res = await post(
      "/jobs",
      JSON.stringify({ order_id: "hostile-2", items: [{ sku: "x".repeat(40_000), qty: 1 }] }),
    );
    // Read and validated (the sku is too long), not refused for its size.
    expect(res.status).toBe(422);
  });

  test("an oversized POST /jobs starts no job", async () => {
    const items = Array.from({ length: 5_000 }, (_, i) => ({ sku: `sku-${i}`, qty: 1 }));
    const res = await post("/jobs", JSON.stringify({ order_id: "hostile-3", items }));
    expect(res.status).toBe(413);
    expect((await get("/jobs/order:hostile-3")).status).toBe(404);
  });
});

describe("error answers", () => {
  test("repeat at most a short prefix of an offending value", async () => {
    const res = await post("/price-quote", JSON.stringify({ sku: "sku-1", qty: "9".repeat(50_000) }));
    expect(res.status).toBe(422);
    const text = await res.text();
    expect(text.length).toBeLessThan(1_000);
    expect(text).toContain("(50002 characters)");
  });
});

describe("tokens", () => {
  const otherKey = generateAuthKeys("ES256");
  const now = () => Math.floor(Date.now() / 1000);
  const refused: [string, () => Promise<string>, number, string][] = [
    ["missing", async () => "", 401, "unauthorized"],
    ["expired", () => bearer("mallory", { exp: now() - 3_600 }), 401, "token_expired"],
    ["for another audience", () => bearer("mallory", { aud: "another-api" }), 401, "invalid_token"],
    [
      "signed by another key",
      async () =>
        `Bearer ${await signToken(otherKey, {
          iss: API_AUTH_DEFAULTS.issuer,
          aud: API_AUTH_DEFAULTS.audience,
          extra: { sub: "mallory" },
        })}`,
      401,
      "invalid_token",
    ],
  ];
  for (const [what, authorization, status, code] of refused) {
    test(`${what}: ${status} ${code} on every route that starts work, and nothing is started`, async () => {
      const run = crypto.randomUUID();
      const as = { authorization: await authorization() };
      const answers = [
        await post(
          "/jobs",
          JSON.stringify({ order_id: `tok-${run}`, items: [{ sku: "sku-1", qty: 1 }] }),
          as,
        ),
        await post(`/orders/tok-${run}/approve-and-ship`, "", as),
        await post("/users/mallory/orders", JSON.stringify({ cart: [{ sku: "sku-1", qty: 1 }] }), {
          ...as,
          "idempotency-key": run,
        }),
        await post("/price-quote", JSON.stringify({ sku: "sku-1", qty: 1 }), as),
      ];
      for (const res of answers) {
        expect(res.status).toBe(status);
        expect(((await res.json()) as { error: { code: string } }).error.code).toBe(code);
      }
      for (const id of [`order:tok-${run}`, `ship:tok-${run}`, `checkout:mallory:${run}`])
        expect((await get(`/jobs/${id}`)).status).toBe(404);
    });
  }

  test("for another user: 403 on that user's routes, and nothing is placed", async () => {
    const run = crypto.randomUUID();
    const as = { authorization: await bearer("mallory") };
    const place = await post("/users/alice/orders", JSON.stringify({ cart: [{ sku: "sku-1", qty: 1 }] }), {
      ...as,
      "idempotency-key": run,
    });
    expect(place.status).toBe(403);
    expect(((await place.json()) as { error: { code: string } }).error.code).toBe("forbidden");
    const list = await fetch(`${api()}/users/alice/orders`, { headers: as });
    expect(list.status).toBe(403);
    expect((await get(`/jobs/checkout:alice:${run}`)).status).toBe(404);
  });

  test("another caller's job is not shown, and an operator's token shows it", async () => {
    const run = crypto.randomUUID();
    const owner = { authorization: await bearer("alice") };
    expect(
      (
        await post(
          "/jobs",
          JSON.stringify({ order_id: `own-${run}`, items: [{ sku: "sku-1", qty: 1 }] }),
          owner,
        )
      ).status,
    ).toBe(202);
    const other = await fetch(`${api()}/jobs/order:own-${run}`, {
      headers: { authorization: await bearer("mallory") },
    });
    expect(other.status).toBe(404);
    expect((await get(`/jobs/order:own-${run}`)).status).toBe(200);
  });
});

describe("slow clients", () => {
  test(
    "while 200 clients trickle their bodies, quotes are answered within the deadline; the trickles get 408 and are closed",
    async () => {
      const authorization = await defaultAuthorization("/price-quote");
      const slow = Array.from({ length: 200 }, () => trickle(api(), "/price-quote", 200, authorization));
      try {
        for (let i = 0; i < 10; i++) {
          const started = performance.now();
          const res = await post("/price-quote", JSON.stringify({ sku: "sku-5", qty: i + 1 }));
          expect(res.status).toBe(200);
          expect(performance.now() - started).toBeLessThan(1_000);
        }
        const answers = await Promise.all(slow.map((s) => s.answer));
        for (const answer of answers) {
          expect(answer).toStartWith("HTTP/1.1 408");
          expect(answer).toContain("request_timeout");
        }
      } finally {
        for (const s of slow) s.socket.destroy();
      }
    },
    E2E_TIMEOUT,
  );
});

describe("callers before bodies", () => {
  test("a body that trickles in without a token is refused at once with a 401, not read", async () => {
    const started = performance.now();
    const answer = await new Promise<string>((resolve) => {
      const { hostname, port } = new URL(api());
      const socket = connect({ host: hostname, port: Number(port) });
      let got = "";
      socket.on("connect", () =>
        socket.write(
          `POST /jobs HTTP/1.1\r\nhost: ${hostname}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{`,
        ),
      );
      socket.on("data", (chunk) => {
        got += chunk.toString();
        if (got.includes("\r\n\r\n{")) {
          socket.destroy();
          resolve(got);
        }
      });
      socket.on("error", () => resolve(got));
    });
    expect(answer).toStartWith("HTTP/1.1 401");
    expect(answer.toLowerCase()).toContain('www-authenticate: bearer realm="resonate-bun-edge"');
    expect(performance.now() - started).toBeLessThan(BODY_TIMEOUT_MS);
  });
});

describe("requests in flight", () => {
  /** How long an admitted trickle holds its slot: long enough for the refusals and the probe below on a machine busy with other suites. */
  const HOLD_MS = 6_000;
  test(
    "past the cap a request is refused at once with a 503, and served again once they end",
    async () => {
      await using capped = await startSystem({
        mode: "colocated",
        apiPort: 0,
        apiAuth: TEST_API_AUTH,
        apiEnv: { MAX_REQUESTS_IN_FLIGHT: "5", BODY_TIMEOUT_MS: String(HOLD_MS) },
      });
      // Ten bodies trickle in: five are admitted and hold every slot, five are refused at once.
      const authorization = await defaultAuthorization("/jobs");
      const slow = Array.from({ length: 10 }, () => trickle(capped.apiUrl, "/jobs", 100, authorization));
      try {
        const refusedTrickles = () => slow.filter((s) => s.received().startsWith("HTTP/1.1 503"));
        await waitFor(() => refusedTrickles().length === 5 || undefined, {
          timeout: 5_000,
          message: "five trickles refused",
        });
        expect(refusedTrickles()[0]?.received()).toContain('"code":"overloaded"');
        const refused = await fetch(`${capped.apiUrl}/healthz`);
        expect(refused.status).toBe(503);
        expect(refused.headers.get("retry-after")).toBe("1");
        expect(((await refused.json()) as { error: { code: string } }).error.code).toBe("overloaded");
        // Once the admitted ones were cut off (408), requests are served again.
        await waitFor(async () => (await fetch(`${capped.apiUrl}/healthz`)).status === 200 || undefined, {
          timeout: HOLD_MS + 10_000,
          message: "served again",
        });
        expect(slow.filter((s) => s.received().startsWith("HTTP/1.1 408")).length).toBe(5);
      } finally {
        for (const s of slow) s.socket.destroy();
      }
    },
    E2E_TIMEOUT,
  );
});
