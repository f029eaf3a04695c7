/**
 * Tokens on a Resonate server started with `--auth-publickey` (and
 * `--auth-iss`, `--auth-aud`): who gets 401, who gets 403, and what passes,
 * for every kind of request that carries an id, the heartbeat and the
 * message stream. Runs on either server:
 *
 *   RESONATE_BIN=/path/to/resonate bun test test/resonate-server/auth.test.ts
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { CompactSign, importPKCS8 } from "jose";
import { SocketNetwork } from "../../core/resonate/network.ts";
import {
  generateAuthKeys,
  PROTOCOL_VERSION,
  type ResonateServer,
  signToken,
  startResonateServer,
  type TokenClaims,
} from "../../harness/index.ts";
import { E2E_TIMEOUT } from "../support/processes.ts";

const ISS = "resonate-tests";
const AUD = "resonate-server";
const keys = generateAuthKeys("ES256");
const otherKeys = generateAuthKeys("ES256");
const now = () => Math.floor(Date.now() / 1000);
const far = () => Date.now() + 3_600_000;
/** A token this server accepts, with these claims over the defaults (`iss`, `aud`, a day's `exp`). */
const token = (claims: TokenClaims = {}, with_ = keys) => signToken(with_, { iss: ISS, aud: AUD, ...claims });

let server: ResonateServer;
beforeAll(async () => {
  server = await startResonateServer({
    auth: { publicKeyPem: keys.publicKeyPem, issuer: ISS, audience: AUD },
  });
}, E2E_TIMEOUT);
afterAll(() => server?.stop(), E2E_TIMEOUT);

interface Reply {
  status: number;
  body: { kind: string; head: { corrId: string; status: number; version: string }; data: unknown };
}

let corr = 0;
/** One protocol request with `auth` in the envelope (none when undefined), and extra HTTP headers. */
async function call(
  kind: string,
  data: object,
  auth: string | null | undefined,
  headers: Record<string, string> = {},
  url = server.url,
): Promise<Reply> {
  const head: Record<string, unknown> = { corrId: `c-${++corr}`, version: PROTOCOL_VERSION };
  if (auth !== undefined) head.auth = auth;
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({ kind, head, data }),
  });
  return { status: res.status, body: (await res.json()) as Reply["body"] };
}

/** The refusal both servers answer, in whole. */
const refusal = (kind: string, corrId: string, status: 401 | 403) => ({
  status,
  body: {
    kind,
    head: { corrId, status, version: PROTOCOL_VERSION },
    data: status === 401 ? "Unauthorized" : "Forbidden",
  },
});

async function expectRefused(
  status: 401 | 403,
  kind: string,
  data: object,
  auth: string | null | undefined,
  headers?: Record<string, string>,
) {
  const reply = await call(kind, data, auth, headers);
  expect(reply).toEqual(refusal(kind, reply.body.head.corrId, status));
}

const promiseData = (id: string, tags: Record<string, string> = {}) => ({
  id,
  timeoutAt: far(),
  param: {},
  tags,
});
const taskCreate = (id: string) => ({
  pid: "p1",
  ttl: 60_000,
  action: {
    kind: "promise.create",
    head: { corrId: "a", version: PROTOCOL_VERSION },
    data: promiseData(id, { "resonate:target": "poll://any@nobody" }),
  },
});

describe("a server with --auth-publickey: 401 for a request without a good token", () => {
  const get = { id: "anything" };

  test("no token, a null one, an empty one, or one that is not a JWT", async () => {
    await expectRefused(401, "promise.get", get, undefined);
    await expectRefused(401, "promise.get", get, null);
    await expectRefused(401, "promise.get", get, "");
    await expectRefused(401, "promise.get", get, "not-a-jwt");
    await expectRefused(401, "promise.get", get, "a.b.c");
  });

  test("the token is read from head.auth only: a bearer header on POST / is not enough", async () => {
    const good = await token({ role: "admin" });
    await expectRefused(401, "promise.get", get, undefined, { authorization: `Bearer ${good}` });
  });

  test("a token signed by another key, or altered after signing", async () => {
    await expectRefused(401, "promise.get", get, await token({ role: "admin" }, otherKeys));
    const [h, , s] = (await token({ role: "user", prefix: "a" })).split(".");
    const forged = Buffer.from(JSON.stringify({ role: "admin", iss: ISS, aud: [AUD], exp: now() + 600 }));
    await expectRefused(401, "promise.get", get, `${h}.${forged.toString("base64url")}.${s}`);
  });

  test("a token spelled another way: a duplicated claim, a signature with other trailing bits", async () => {
    // Signed by the key, but with `role` twice: the real server's claims struct refuses a duplicate field.
    const twice = `{"role":"worker","role":"admin","iss":"${ISS}","aud":["${AUD}"],"exp":${now() + 600}}`;
    const signed = await new CompactSign(new TextEncoder().encode(twice))
      .setProtectedHeader({ alg: "ES256" })
      .sign(await importPKCS8(keys.privateKeyPem, "ES256"));
    await expectRefused(401, "promise.get", get, signed);
    const good = await token({ role: "admin" });
    const [gh, gp, gs = ""] = good.split(".");
    // The last character of a 64-byte signature carries 4 unused bits; set one of them.
    const last = gs.at(-1) as string;
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const tweaked = alphabet[alphabet.indexOf(last) | 1] as string;
    expect(tweaked).not.toBe(last);
    expect(Buffer.from(`${gs.slice(0, -1)}${tweaked}`, "base64url")).toEqual(Buffer.from(gs, "base64url"));
    await expectRefused(401, "promise.get", get, `${gh}.${gp}.${gs.slice(0, -1)}${tweaked}`);
    expect((await call("promise.get", get, good)).status).toBe(404);
  });

  test("a token of another key family (RS256, EdDSA) than the server's EC key", async () => {
    await expectRefused(401, "promise.get", get, await token({ role: "admin" }, generateAuthKeys("RS256")));
    await expectRefused(401, "promise.get", get, await token({ role: "admin" }, generateAuthKeys("EdDSA")));
  });

  test("an unsigned token (alg none)", async () => {
    const part = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
    const unsigned = `${part({ alg: "none" })}.${part({ role: "admin", iss: ISS, aud: [AUD], exp: now() + 600 })}.`;
    await expectRefused(401, "promise.get", get, unsigned);
  });

  test("expired past the 60 s leeway, or without exp; within the leeway it passes", async () => {
    await expectRefused(401, "promise.get", get, await token({ role: "admin", exp: now() - 120 }));
    await expectRefused(401, "promise.get", get, await token({ role: "admin", exp: null }));
    await expectRefused(
      401,
      "promise.get",
      get,
      await token({ role: "admin", exp: null, extra: { exp: "soon" } }),
    );
    const lenient = await call("promise.get", get, await token({ role: "admin", exp: now() - 30 }));
    expect(lenient.status).toBe(404);
  });

  test("a wrong or missing issuer", async () => {
    await expectRefused(401, "promise.get", get, await token({ role: "admin", iss: "someone-else" }));
    await expectRefused(
      401,
      "promise.get",
      get,
      await signToken(keys, { role: "admin", aud: AUD }), // no iss
    );
  });

  test("a wrong or missing audience, and an audience that is a single string", async () => {
    await expectRefused(401, "promise.get", get, await token({ role: "admin", aud: "another-server" }));
    await expectRefused(401, "promise.get", get, await signToken(keys, { role: "admin", iss: ISS }));
    // The real server's claims take `aud` only as a list.
    await expectRefused(
      401,
      "promise.get",
      get,
      await signToken(keys, { role: "admin", iss: ISS, extra: { aud: AUD } }),
    );
  });

  test("a role that is not a string", async () => {
    await expectRefused(401, "promise.get", get, await token({ extra: { role: 1 } }));
  });

  test("authentication comes before the kind and the data are read", async () => {
    await expectRefused(401, "promise.explode", {}, undefined);
    await expectRefused(401, "debug.snap", {}, undefined);
    await expectRefused(401, "promise.get", { id: 5 }, undefined);
    const admin = await token({ role: "admin" });
    expect((await call("promise.get", { id: 5 }, admin)).status).toBe(400);
    expect((await call("promise.explode", {}, admin)).status).toBe(400);
  });

  test("a head.auth that is not a string is a bad envelope (400)", async () => {
    expect((await call("promise.get", get, 5 as unknown as string)).status).toBe(400);
  });
});

describe("a server with --auth-publickey: a token that is not admin, by its prefix", () => {
  const inside = "auth-a";
  const outside = "auth-b.1";
  let scoped: string;
  beforeAll(async () => {
    scoped = await token({ role: "worker", prefix: inside });
  });

  const outsideRequests: [string, object][] = [
    ["promise.get", { id: outside }],
    ["promise.create", promiseData(outside)],
    ["promise.settle", { id: outside, state: "resolved", value: {} }],
    ["promise.register_callback", { awaited: outside, awaiter: `${inside}.x` }],
    ["promise.register_listener", { awaited: outside, address: "poll://uni@g/p" }],
    ["task.get", { id: outside }],
    ["task.create", taskCreate(outside)],
    ["task.acquire", { id: outside, version: 1, pid: "p1", ttl: 1000 }],
    ["task.release", { id: outside, version: 1 }],
    ["task.suspend", { id: outside, version: 1, actions: [] }],
    ["task.fulfill", { id: outside, version: 1, action: {} }],
    ["task.fence", { id: outside, version: 1, action: {} }],
    ["task.halt", { id: outside }],
    ["task.continue", { id: outside }],
    [
      "task.heartbeat",
      {
        pid: "p1",
        tasks: [
          { id: `${inside}.t`, version: 1 },
          { id: outside, version: 1 },
        ],
      },
    ],
    ["schedule.get", { id: "auth-b-s" }],
    ["schedule.create", { id: "auth-a-s", cron: "* * * * *", promiseId: `${outside}.{{.timestamp}}` }],
    ["schedule.delete", { id: "auth-b-s" }],
    // Searches name no single id, and kinds the server does not list are refused alike.
    ["promise.search", { state: "pending" }],
    ["task.search", {}],
    ["schedule.search", {}],
    ["promise.explode", {}],
  ];
  for (const [kind, data] of outsideRequests) {
    test(`403 for ${kind} outside the prefix`, async () => {
      await expectRefused(403, kind, data, scoped);
    });
  }

  test("403 for a token with no prefix, a null one or one that is not a string", async () => {
    const get = { id: `${inside}.1` };
    await expectRefused(403, "promise.get", get, await token({ role: "worker" }));
    await expectRefused(403, "promise.get", get, await token({ role: "worker", prefix: null }));
    await expectRefused(403, "promise.get", get, await token({ role: "worker", extra: { prefix: 7 } }));
  });

  test("inside the prefix each kind is answered as without tokens", async () => {
    const id = `${inside}.p`;
    expect((await call("promise.create", promiseData(id), scoped)).status).toBe(200);
    expect((await call("promise.get", { id }, scoped)).status).toBe(200);
    expect(
      (await call("promise.register_listener", { awaited: id, address: "poll://uni@g/p" }, scoped)).status,
    ).toBe(200);
    // Only the awaited id is checked; the awaiter may be anywhere.
    const callback = await call("promise.register_callback", { awaited: id, awaiter: "elsewhere" }, scoped);
    expect([401, 403]).not.toContain(callback.status);
    expect((await call("promise.settle", { id, state: "resolved", value: {} }, scoped)).status).toBe(200);

    const task = `${inside}.t`;
    expect((await call("task.create", taskCreate(task), scoped)).status).toBe(200);
    expect((await call("task.get", { id: task }, scoped)).status).toBe(200);
    expect(
      (await call("task.heartbeat", { pid: "p1", tasks: [{ id: task, version: 1 }] }, scoped)).status,
    ).toBe(200);
    const fulfilled = await call(
      "task.fulfill",
      {
        id: task,
        version: 1,
        action: {
          kind: "promise.settle",
          head: { corrId: "f", version: PROTOCOL_VERSION },
          data: { id: task, state: "resolved", value: {} },
        },
      },
      scoped,
    );
    expect(fulfilled.status).toBe(200);
    expect((await call("task.get", { id: `${inside}.none` }, scoped)).status).toBe(404);
  });

  test('prefix "" opens every id, and a heartbeat whose tasks are all inside passes', async () => {
    const everything = await token({ role: "worker", prefix: "" });
    expect((await call("promise.get", { id: "zzz.unknown" }, everything)).status).toBe(404);
    expect([401, 403]).not.toContain((await call("promise.search", { state: "pending" }, everything)).status);
  });
});

describe("a server with --auth-publickey: admin", () => {
  test("an admin token (role admin in any case) may touch any id and search", async () => {
    for (const role of ["admin", "ADMIN", "Admin"]) {
      const admin = await token({ role, prefix: "nothing-matches" });
      expect((await call("promise.get", { id: "zzz.unknown" }, admin)).status).toBe(404);
      expect((await call("promise.create", promiseData(`adm-${role}`), admin)).status).toBe(200);
      expect([401, 403]).not.toContain((await call("task.search", {}, admin)).status);
    }
  });
});

describe("a server with --auth-publickey: the message stream and the health routes", () => {
  const poll = (headers: Record<string, string>) =>
    fetch(`${server.url}/poll/some-group/some-pid`, { headers: { accept: "text/event-stream", ...headers } });

  test("the stream without a bearer token, with a bad one, or with the wrong scheme: 401", async () => {
    const good = await token({ role: "admin" });
    for (const headers of [
      {} as Record<string, string>,
      { authorization: "Bearer not-a-jwt" },
      { authorization: `Bearer ${await token({ role: "admin" }, otherKeys)}` },
      { authorization: `bearer ${good}` },
      { authorization: good },
    ]) {
      const res = await poll(headers);
      expect({ status: res.status, body: await res.text() }).toEqual({ status: 401, body: "Unauthorized" });
      expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
    }
  });

  test("any valid token opens any group's stream: the stream is authenticated, not scoped", async () => {
    const scoped = await token({ role: "worker", prefix: "only-this" });
    const abort = new AbortController();
    const res = await fetch(`${server.url}/poll/other-group/other-pid`, {
      headers: { accept: "text/event-stream", authorization: `Bearer ${scoped}` },
      signal: abort.signal,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    abort.abort();
  });

  test("/health needs no token", async () => {
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
  });
});

describe("a server with --auth-publickey and no --auth-iss or --auth-aud", () => {
  let open: ResonateServer;
  beforeAll(async () => {
    open = await startResonateServer({ auth: { publicKeyPem: keys.publicKeyPem } });
  }, E2E_TIMEOUT);
  afterAll(() => open?.stop(), E2E_TIMEOUT);
  const get = (auth: string) => call("promise.get", { id: "x" }, auth, {}, open.url);

  test("any iss and aud pass, but aud must still be a list of strings", async () => {
    expect((await get(await signToken(keys, { role: "admin" }))).status).toBe(404);
    expect((await get(await signToken(keys, { role: "admin", iss: "any", aud: ["any"] }))).status).toBe(404);
    expect((await get(await signToken(keys, { role: "admin", extra: { aud: "one" } }))).status).toBe(401);
    expect((await get(await signToken(keys, { role: "admin", extra: { iss: ["a"] } }))).status).toBe(401);
  });
});

describe("a server with an RSA key", () => {
  const rsa = generateAuthKeys("RS256");
  let rsaServer: ResonateServer;
  beforeAll(async () => {
    rsaServer = await startResonateServer({ auth: { publicKeyPem: rsa.publicKeyPem } });
  }, E2E_TIMEOUT);
  afterAll(() => rsaServer?.stop(), E2E_TIMEOUT);
  const get = (auth: string) => call("promise.get", { id: "x" }, auth, {}, rsaServer.url);

  test("takes RS256 and PS256 tokens of its key and refuses an ES256 one", async () => {
    expect((await get(await signToken(rsa, { role: "admin" }))).status).toBe(404);
    expect((await get(await signToken({ ...rsa, alg: "PS256" }, { role: "admin" }))).status).toBe(404);
    expect((await get(await signToken(keys, { role: "admin" }))).status).toBe(401);
  });
});

test(
  "a key file that is not a public key stops the server before it answers",
  async () => {
    await expect(startResonateServer({ auth: { publicKeyPem: "not a key\n" } })).rejects.toThrow();
  },
  E2E_TIMEOUT,
);

describe("SocketNetwork against a server that refuses its token", () => {
  test("reports a 401 once, with the status and the server's message, and backs off", async () => {
    const warnings: string[] = [];
    const network = new SocketNetwork({
      url: server.url,
      group: "g",
      pid: "p-bad",
      token: await token({ role: "admin" }, otherKeys),
      timeoutMs: 5_000,
      warn: (message) => warnings.push(message),
    });
    try {
      const send = () =>
        network.send({
          kind: "promise.get",
          head: { corrId: `n-${++corr}`, version: PROTOCOL_VERSION },
          data: { id: "x" },
        } as never);
      const started = Date.now();
      await expect(send()).rejects.toThrow("HTTP 401");
      await expect(send()).rejects.toThrow("HTTP 401");
      await expect(send()).rejects.toThrow("HTTP 401");
      // The second waited 1 s and the third 2 s before going out.
      expect(Date.now() - started).toBeGreaterThanOrEqual(2_900);
      const refused = warnings.filter((w) => w.startsWith("request refused"));
      expect(refused).toHaveLength(1);
      expect(refused[0]).toContain('HTTP 401 "Unauthorized" for promise.get x');
      const stream = warnings.filter((w) => w.startsWith("message stream"));
      expect(stream).toHaveLength(1);
      expect(stream[0]).toContain("HTTP 401 Unauthorized");
    } finally {
      await network.stop();
    }
  }, 20_000);

  test("reports a 403 once per cause and holds back only the refused id", async () => {
    const warnings: string[] = [];
    const network = new SocketNetwork({
      url: server.url,
      group: "g",
      pid: "p-scoped",
      token: await token({ role: "worker", prefix: "mine" }),
      timeoutMs: 5_000,
      warn: (message) => warnings.push(message),
    });
    try {
      const get = (id: string) =>
        network.send({
          kind: "promise.get",
          head: { corrId: `n-${++corr}`, version: PROTOCOL_VERSION },
          data: { id },
        } as never);
      await expect(get("theirs.1")).rejects.toThrow("HTTP 403");
      const started = Date.now();
      expect((await get("mine.1")).head.status).toBe(404);
      expect(Date.now() - started).toBeLessThan(900);
      await expect(get("theirs.2")).rejects.toThrow("HTTP 403");
      const refused = warnings.filter((w) => w.startsWith("request refused"));
      expect(refused).toHaveLength(1);
      expect(refused[0]).toContain('HTTP 403 "Forbidden" for promise.get theirs.1');
    } finally {
      await network.stop();
    }
  }, 20_000);
});
