/**
 * `GET /metrics` in-process (`app.handle`): labels by route pattern, one
 * registry per app, the optional token, and the settings that go with it.
 */
import { describe, expect, test } from "bun:test";
import { Resonate } from "@resonatehq/sdk";
import { ConfigError, loadConfig, targetsFor } from "../../core/config.ts";
import { waitFor } from "../../harness/index.ts";
import { parseScrape, total } from "../../harness/load/prometheus.ts";
import { createApp } from "../../src/app.ts";
import { UNCHECKED } from "../../src/auth/service.ts";
import { makeDeps } from "../../src/deps.ts";
import { TEST_SECRET } from "../support/secrets.ts";

/** An app on the SDK's in-process network, with `env` over the test's settings. */
function app(env: Record<string, string> = {}) {
  const config = loadConfig({ MODE: "colocated", WEBHOOK_SECRET: TEST_SECRET, ...env });
  const resonate = new Resonate({ group: "api", pid: `metrics-${crypto.randomUUID()}` });
  const deps = makeDeps(resonate, config, targetsFor(config));
  // Callers are not checked: what is counted is the route a request reached.
  const built = createApp(deps, { webhookSecret: TEST_SECRET, auth: UNCHECKED });
  let handled = 0;
  const get = async (path: string, headers: Record<string, string> = {}) => {
    const res = await built.handle(new Request(`http://api.test${path}`, { headers }));
    handled++;
    return res;
  };
  /**
   * `GET /metrics`, once every request handled before it has been counted:
   * Elysia counts a request in its afterResponse hook, just after the
   * response is handed back.
   */
  const metrics = async (headers: Record<string, string> = {}) => {
    const before = handled;
    await waitFor(
      async () =>
        total(parseScrape(await deps.metrics.registry.metrics()), "http_requests_total") === before ||
        undefined,
      { timeout: 2_000, message: `${before} requests counted` },
    );
    return get("/metrics", headers);
  };
  return { get, metrics, [Symbol.asyncDispose]: () => resonate.stop() };
}

describe("GET /metrics", () => {
  test("labels requests by route pattern, not by path; a path no route has is `unmatched`", async () => {
    await using a = app();
    for (const id of ["order:a1", "order:a2", "order:a3"])
      expect((await a.get(`/jobs/${id}`)).status).toBe(404);
    expect((await a.get("/no/such/path")).status).toBe(404);
    const res = await a.metrics();
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toStartWith("text/plain; version=0.0.4");
    const s = parseScrape(await res.text());
    expect(total(s, "http_requests_total", { method: "GET", route: "/jobs/:id", status: "404" })).toBe(3);
    expect(total(s, "http_requests_total", { route: "unmatched", status: "404" })).toBe(1);
    expect((s.get("http_requests_total") ?? []).map((x) => x.labels.route).sort()).toEqual([
      "/jobs/:id",
      "unmatched",
    ]);
  });

  test("each app counts on a registry of its own", async () => {
    await using first = app();
    await using second = app();
    await first.get("/healthz");
    await first.get("/healthz");
    await second.get("/healthz");
    const count = async (a: typeof first) =>
      total(parseScrape(await (await a.metrics()).text()), "http_requests_total", {
        route: "/healthz",
      });
    expect([await count(first), await count(second)]).toEqual([2, 1]);
  });

  test("with METRICS_TOKEN it answers only a bearer of that token", async () => {
    await using a = app({ METRICS_TOKEN: "s3cret" });
    const refused = await a.metrics();
    expect(refused.status).toBe(401);
    expect(await refused.json()).toEqual({
      error: { code: "unauthorized", message: "metrics need Authorization: Bearer <METRICS_TOKEN>" },
    });
    expect((await a.metrics({ authorization: "Bearer nope" })).status).toBe(401);
    expect((await a.metrics({ authorization: "Bearer s3cret" })).status).toBe(200);
  });
});

describe("the settings of logs and metrics", () => {
  test("default to info lines, no worker metrics port, and open metrics", () => {
    expect(loadConfig({})).toMatchObject({
      logLevel: "info",
      metricsPort: undefined,
      metricsHost: "127.0.0.1",
      metricsToken: undefined,
    });
    expect(loadConfig({ METRICS_PORT: "0", LOG_LEVEL: "silent" })).toMatchObject({
      metricsPort: 0,
      logLevel: "silent",
    });
  });

  for (const [env, message] of [
    [
      { LOG_LEVEL: "loud" },
      'LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "loud"',
    ],
    [{ METRICS_PORT: "9x" }, 'METRICS_PORT must be a whole number from 0 to 65535, got "9x"'],
    [{ METRICS_PORT: "70000" }, 'METRICS_PORT must be a whole number from 0 to 65535, got "70000"'],
  ] as const) {
    test(`refuses ${JSON.stringify(env)} with an error that names the setting`, () => {
      expect(() => loadConfig(env)).toThrow(new ConfigError(message));
    });
  }
});
