/**
 * Who may call what, in process (`app.handle`): every kind of token the API
 * must refuse gets its status and error code, with nothing started; a
 * user's routes take only that user's token; a job is seen by its owner or
 * an operator and by no one else; health, docs and metrics stay open; keys
 * come from a PEM file of any supported family or a JWKS file.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createPrivateKey, createPublicKey } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, loadConfig } from "../../core/config.ts";
import { API_AUTH_DEFAULTS, apiAuthWith } from "../../harness/api-auth.ts";
import { type AuthAlgorithm, generateAuthKeys, signToken } from "../../harness/jwt.ts";
import { callerAuth } from "../../src/auth/service.ts";
import { bearer, TEST_API_AUTH } from "../support/api-auth.ts";
import { startColocatedApi } from "../support/colocated-api.ts";
import { readReply } from "../support/http.ts";
import { tempDir } from "../support/temp.ts";

let api: Awaited<ReturnType<typeof startColocatedApi>>;
beforeAll(async () => {
  api = await startColocatedApi();
});
afterAll(() => api?.stop());

const now = () => Math.floor(Date.now() / 1000);
const b64url = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
const send = async (method: string, path: string, authorization: string, body?: unknown) =>
  readReply(await api.request(method, path, body, { authorization }));

/** Whether a durable promise exists under `id`. */
const exists = (id: string) =>
  api.resonate.promises.get(id).then(
    () => true,
    () => false,
  );

const order = (id: string) => ({ order_id: id, items: [{ sku: "sku-1", qty: 1 }] });

describe("tokens the API refuses: 401 with the error shape and a Bearer challenge, nothing started", () => {
  const otherKeys = generateAuthKeys("ES256");
  const cases: [string, () => Promise<string>, string][] = [
    ["no Authorization header", async () => "", "unauthorized"],
    ["a Basic credential", async () => "Basic dXNlcjpwYXNz", "unauthorized"],
    ["Bearer and no token", async () => "Bearer ", "unauthorized"],
    ["not a JWT", async () => "Bearer not-a-jwt", "invalid_token"],
    ["expired beyond the clock skew", () => bearer("alice", { exp: now() - 120 }), "token_expired"],
    ["for another audience", () => bearer("alice", { aud: "someone-else" }), "invalid_token"],
    ["from another issuer", () => bearer("alice", { iss: "https://other.example" }), "invalid_token"],
    [
      "signed by another key",
      async () =>
        `Bearer ${await signToken(otherKeys, {
          iss: API_AUTH_DEFAULTS.issuer,
          aud: API_AUTH_DEFAULTS.audience,
          extra: { sub: "alice" },
        })}`,
      "invalid_token",
    ],
    [
      "unsigned (alg none)",
      async () =>
        `Bearer ${b64url({ alg: "none", typ: "JWT" })}.${b64url({
          sub: "alice",
          iss: API_AUTH_DEFAULTS.issuer,
          aud: API_AUTH_DEFAULTS.audience,
          exp: now() + 600,
        })}.`,
      "invalid_token",
    ],
    [
      "HS256 with the public key as the secret",
      async () => {
        const { SignJWT } = await import("jose");
        const secret = new TextEncoder().encode(TEST_API_AUTH.keys.publicKeyPem);
        return `Bearer ${await new SignJWT({ sub: "alice" })
          .setProtectedHeader({ alg: "HS256" })
          .setIssuer(API_AUTH_DEFAULTS.issuer)
          .setAudience(API_AUTH_DEFAULTS.audience)
          .setExpirationTime("10m")
          .sign(secret)}`;
      },
      "invalid_token",
    ],
    ["without sub", () => bearer("", {}), "invalid_token"],
    [
      "without exp",
      async () =>
        `Bearer ${await signToken(TEST_API_AUTH.keys, {
          iss: API_AUTH_DEFAULTS.issuer,
          aud: API_AUTH_DEFAULTS.audience,
          exp: null,
          extra: { sub: "alice" },
        })}`,
      "invalid_token",
    ],
    [
      "not valid before a time beyond the skew",
      () => bearer("alice", { extra: { nbf: now() + 300 } }),
      "invalid_token",
    ],
  ];

  for (const [what, authorization, code] of cases) {
    test(`${what}: 401 ${code}, and POST /jobs started no job`, async () => {
      const id = `auth-refused-${crypto.randomUUID()}`;
      const res = await send("POST", "/jobs", await authorization(), order(id));
      expect(res.status).toBe(401);
      expect(res.body).toMatchObject({ error: { code, message: expect.any(String) } });
      expect(res.headers.get("www-authenticate")).toStartWith('Bearer realm="resonate-bun-edge"');
      expect(await exists(`order:${id}`)).toBe(false);
    });
  }

  test("the 401 comes before the body is read: without a token any body is a 401, not a 400, 415 or 422", async () => {
    for (const [body, type] of [
      [JSON.stringify({ order_id: 42 }), "application/json"],
      ["[1]", "application/json"],
      ["{", "application/json"],
      ["order_id=1", "text/plain"],
    ] as const) {
      const res = await readReply(
        await api.app.handle(
          new Request("http://api.test/jobs", { method: "POST", headers: { "content-type": type }, body }),
        ),
      );
      expect([body, res.status]).toEqual([body, 401]);
    }
  });

  test("every checked route refuses a missing token; the webhooks, health, docs and metrics do not ask for one", async () => {
    for (const [method, path, body] of [
      ["POST", "/jobs", order("auth-x")],
      ["GET", "/jobs/order:auth-x", undefined],
      ["POST", "/orders/auth-x/approve-and-ship", undefined],
      ["POST", "/price-quote", { sku: "sku-1", qty: 1 }],
      ["GET", "/price-quote/quote:x", undefined],
      ["POST", "/users/alice/orders", { cart: [{ sku: "sku-1", qty: 1 }] }],
      ["GET", "/users/alice/orders", undefined],
    ] as const)
      expect([method, path, (await send(method, path, "", body)).status]).toEqual([method, path, 401]);
    for (const path of ["/healthz", "/readyz", "/docs", "/docs/json", "/metrics"]) {
      const res = await api.request("GET", path, undefined, { authorization: "" });
      expect([path, res.status]).toEqual([path, 200]);
    }
    // A webhook is judged by its signature: unsigned, it is the webhook's own 401, not the bearer one.
    const hook = await send("POST", "/webhooks/approval/auth-x", "", { approved: true });
    expect(hook.status).toBe(401);
    expect(hook.headers.get("www-authenticate")).toBeNull();
  });

  test("a token within the clock skew of its exp is still good", async () => {
    const res = await send("GET", "/users/alice/orders", await bearer("alice", { exp: now() - 10 }));
    expect(res.status).toBe(200);
  });
});

describe("a user's routes are that user's own", () => {
  test("another user's token is a 403 on both, before the body or the Idempotency-Key is looked at, and places nothing", async () => {
    const asBob = await bearer("bob");
    const list = await send("GET", "/users/alice/orders", asBob);
    expect(list.status).toBe(403);
    expect(list.body).toMatchObject({ error: { code: "forbidden" } });
    expect(list.headers.get("www-authenticate")).toContain('error="insufficient_scope"');
    const place = await readReply(
      await api.request("POST", "/users/alice/orders", { cart: "not a cart" }, { authorization: asBob }),
    );
    expect(place.status).toBe(403);
    const key = `k-${crypto.randomUUID()}`;
    const valid = await readReply(
      await api.request(
        "POST",
        "/users/alice/orders",
        { cart: [{ sku: "sku-1", qty: 1 }] },
        { authorization: asBob, "idempotency-key": key },
      ),
    );
    expect(valid.status).toBe(403);
    expect(await exists(`checkout:alice:${key}`)).toBe(false);
  });

  test("another user's 403 comes before the body is read: malformed JSON, another media type or none at all", async () => {
    const asBob = await bearer("bob");
    for (const [body, type] of [
      ["{", "application/json"],
      ["cart=1", "text/plain"],
      ["", "application/json"],
    ] as const) {
      const res = await readReply(
        await api.app.handle(
          new Request("http://api.test/users/alice/orders", {
            method: "POST",
            headers: { "content-type": type, authorization: asBob },
            body,
          }),
        ),
      );
      expect([body, type, res.status]).toEqual([body, type, 403]);
      expect(res.body).toMatchObject({ error: { code: "forbidden" } });
    }
    // Alice's own token with the same malformed body reaches the body rules.
    const own = await readReply(
      await api.app.handle(
        new Request("http://api.test/users/alice/orders", {
          method: "POST",
          headers: { "content-type": "application/json", authorization: await bearer("alice") },
          body: "{",
        }),
      ),
    );
    expect(own.status).toBe(400);
  });

  test("an operator is no exception: a user's routes need that user's token", async () => {
    const res = await send("GET", "/users/alice/orders", await bearer("ops", { scope: "operator" }));
    expect(res.status).toBe(403);
  });

  test("the user's own token is let in", async () => {
    const res = await send("GET", "/users/alice/orders", await bearer("alice"));
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ user_id: "alice" });
  });
});

describe("a job is seen by the caller who started it, or an operator", () => {
  test("owner 200, another caller 404 (as if it did not exist), an operator 200; another caller's same order is a 409", async () => {
    const id = `auth-owned-${crypto.randomUUID()}`;
    const alice = await bearer("alice");
    expect((await send("POST", "/jobs", alice, order(id))).status).toBe(202);
    expect((await send("GET", `/jobs/order:${id}`, alice)).status).toBe(200);
    const bob = await send("GET", `/jobs/order:${id}`, await bearer("bob"));
    expect(bob.status).toBe(404);
    expect(bob.body).toEqual({ error: { code: "not_found", message: `job order:${id} not found` } });
    const ops = await send("GET", `/jobs/order:${id}`, await bearer("ops", { scope: "read operator" }));
    expect(ops.status).toBe(200);
    // The same order again from its owner joins it; from anyone else it is refused.
    expect((await send("POST", "/jobs", alice, order(id))).status).toBe(202);
    const taken = await send("POST", "/jobs", await bearer("bob"), order(id));
    expect(taken.status).toBe(409);
    expect(taken.body).toMatchObject({ error: { code: "conflict" } });
  });

  test("a job's root promise carries its owner and kind as tags", async () => {
    const id = `auth-tags-${crypto.randomUUID()}`;
    expect((await send("POST", "/jobs", await bearer("carol"), order(id))).status).toBe(202);
    const root = await api.resonate.promises.get(`order:${id}`);
    expect(root.tags).toMatchObject({ job: "true", "job:kind": "order", "job:owner": "carol" });
  });

  test("another caller's order cannot be held for approval: 404, as if it were not there", async () => {
    const orderId = `auth-held-${crypto.randomUUID()}`;
    expect((await send("POST", "/jobs", await bearer("frank"), order(orderId))).status).toBe(202);
    const grab = await send("POST", `/orders/${orderId}/approve-and-ship`, await bearer("mallory"));
    expect(grab.status).toBe(404);
    expect(await exists(`ship:${orderId}`)).toBe(false);
    expect((await send("POST", `/orders/${orderId}/approve-and-ship`, await bearer("frank"))).status).toBe(
      202,
    );
  });

  test("an approval belongs to whoever started it", async () => {
    const orderId = `auth-approval-${crypto.randomUUID()}`;
    expect((await send("POST", `/orders/${orderId}/approve-and-ship`, await bearer("dave"))).status).toBe(
      202,
    );
    expect((await send("GET", `/jobs/ship:${orderId}`, await bearer("dave"))).status).toBe(200);
    expect((await send("GET", `/jobs/ship:${orderId}`, await bearer("erin"))).status).toBe(404);
    expect((await send("POST", `/orders/${orderId}/approve-and-ship`, await bearer("erin"))).status).toBe(
      409,
    );
  });
});

describe("where the keys come from", () => {
  const dir = tempDir("auth-keys-");
  afterAll(() => dir.remove());
  const settings = (env: Record<string, string>) =>
    loadConfig({ AUTH_ISSUER: API_AUTH_DEFAULTS.issuer, AUTH_AUDIENCE: API_AUTH_DEFAULTS.audience, ...env })
      .auth;

  for (const alg of ["RS256", "PS256", "EdDSA", "ES256"] as AuthAlgorithm[]) {
    test(`a PEM public key for ${alg}`, async () => {
      const keys = generateAuthKeys(alg);
      const file = join(dir.path, `${alg}.pem`);
      writeFileSync(file, keys.publicKeyPem);
      const auth = await callerAuth(settings({ AUTH_PUBLIC_KEY: file }));
      const token = await apiAuthWith(keys, file).token("alice");
      expect(await auth.authenticate(`Bearer ${token}`)).toEqual({
        sub: "alice",
        operator: false,
        unchecked: false,
      });
    });
  }

  test("a token let in once is let in again only inside its nbf-exp window (with the clock skew), and refused outside it as at first", async () => {
    const keys = generateAuthKeys("ES256");
    const file = join(dir.path, "window.pem");
    writeFileSync(file, keys.publicKeyPem);
    const t0 = Math.floor(Date.now() / 1000) * 1000;
    let clock = t0;
    const auth = await callerAuth(settings({ AUTH_PUBLIC_KEY: file, AUTH_CLOCK_SKEW_S: "30" }), () => clock);
    const { importPKCS8, SignJWT } = await import("jose");
    const token = `Bearer ${await new SignJWT({ sub: "alice" })
      .setProtectedHeader({ alg: "ES256" })
      .setIssuer(API_AUTH_DEFAULTS.issuer)
      .setAudience(API_AUTH_DEFAULTS.audience)
      .setNotBefore(t0 / 1000 + 100)
      .setExpirationTime(t0 / 1000 + 200)
      .sign(await importPKCS8(keys.privateKeyPem, "ES256"))}`;
    const at = async (seconds: number) => {
      clock = t0 + seconds * 1000;
      return auth.authenticate(token).then(
        (caller) => caller.sub,
        (error: { status: number; message: string }) => `${error.status} ${error.message}`,
      );
    };
    expect(await at(0)).toStartWith("401 ");
    expect(await at(100)).toBe("alice");
    expect(await at(150)).toBe("alice");
    expect(await at(229)).toBe("alice");
    expect(await at(231)).toMatch(/^401 .*expired/);
    expect(await at(71)).toBe("alice");
    expect(await at(69)).toMatch(/^401 .*not valid yet/);
  });

  test("a JWKS file with two keys: a token names its key by kid, and a key that is not in the set is refused", async () => {
    const [first, second, outside] = [generateAuthKeys(), generateAuthKeys(), generateAuthKeys()];
    const jwk = (keys: typeof first, kid: string) => ({
      ...createPublicKey(keys.publicKeyPem).export({ format: "jwk" }),
      kid,
      use: "sig",
      alg: "ES256",
    });
    const file = join(dir.path, "jwks.json");
    writeFileSync(file, JSON.stringify({ keys: [jwk(first, "one"), jwk(second, "two")] }));
    const auth = await callerAuth(settings({ AUTH_JWKS: file }));
    const signed = async (keys: typeof first, kid: string, scope?: string) => {
      const { importPKCS8, SignJWT } = await import("jose");
      return new SignJWT({ sub: "alice", ...(scope ? { scope } : {}) })
        .setProtectedHeader({ alg: "ES256", kid })
        .setIssuer(API_AUTH_DEFAULTS.issuer)
        .setAudience(API_AUTH_DEFAULTS.audience)
        .setExpirationTime("10m")
        .sign(await importPKCS8(keys.privateKeyPem, "ES256"));
    };
    expect(await auth.authenticate(`Bearer ${await signed(second, "two", "operator")}`)).toMatchObject({
      sub: "alice",
      operator: true,
    });
    await expect(auth.authenticate(`Bearer ${await signed(outside, "two")}`)).rejects.toMatchObject({
      status: 401,
    });
  });

  test("an unreadable or wrong key file is a setting error that names the setting", async () => {
    const notPem = join(dir.path, "not.pem");
    writeFileSync(notPem, "hello");
    await expect(callerAuth(settings({ AUTH_PUBLIC_KEY: join(dir.path, "missing.pem") }))).rejects.toThrow(
      ConfigError,
    );
    await expect(callerAuth(settings({ AUTH_PUBLIC_KEY: notPem }))).rejects.toThrow(/^AUTH_PUBLIC_KEY: /);
    await expect(callerAuth(settings({ AUTH_JWKS: notPem }))).rejects.toThrow(/^AUTH_JWKS: /);
  });

  test("a private key, or a JWKS with a private or shared-secret key, is refused at start", async () => {
    const privatePem = join(dir.path, "private.pem");
    writeFileSync(privatePem, generateAuthKeys().privateKeyPem);
    await expect(callerAuth(settings({ AUTH_PUBLIC_KEY: privatePem }))).rejects.toThrow(
      /holds a private key/,
    );
    const secret = join(dir.path, "oct.json");
    writeFileSync(secret, JSON.stringify({ keys: [{ kty: "oct", k: "c2VjcmV0", kid: "s" }] }));
    await expect(callerAuth(settings({ AUTH_JWKS: secret }))).rejects.toThrow(/private or shared-secret/);
    const privateJwk = join(dir.path, "private-jwk.json");
    const jwk = createPrivateKey(generateAuthKeys().privateKeyPem).export({ format: "jwk" });
    writeFileSync(privateJwk, JSON.stringify({ keys: [jwk] }));
    await expect(callerAuth(settings({ AUTH_JWKS: privateJwk }))).rejects.toThrow(/private or shared-secret/);
  });
});
