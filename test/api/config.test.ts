import { describe, expect, test } from "bun:test";
import { resolve } from "node:path";
import {
  ConfigError,
  loadConfig,
  loadLauncherConfig,
  requireCallerAuth,
  targetsFor,
} from "../../core/config.ts";
import { ROLES } from "../../core/settings.ts";
import { spawnProcess } from "../../harness/index.ts";
import { TEST_SECRET } from "../support/secrets.ts";

describe("configuration from the environment", () => {
  test("with nothing set, every setting has its documented default", () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 3000,
      resonateUrl: undefined,
      quoteDeadlineMs: 1_000,
      quoteMaxWaiting: 200,
      priceRefreshMs: 30_000,
      colocated: false,
      benchRoutes: false,
      paymentUrl: "http://127.0.0.1:4010/payment",
      resonateToken: undefined,
      resonateTimeoutMs: 10_000,
      apiPid: undefined,
      workerPid: undefined,
      shutdownGraceMs: 10_000,
      shutdownListenMs: 1_000,
      workflowBuild: "current",
    });
    expect(config.databaseUrl).toStartWith("sqlite://");
    expect(targetsFor(config)).toEqual({
      orders: "order-workers",
      pricing: "pricing-workers",
      db: "db",
      business: "business",
    });
  });

  test("npm start's own settings have their documented defaults too", () => {
    expect(loadLauncherConfig({})).toMatchObject({
      port: 3000,
      resonatePort: 8001,
      resonateBin: undefined,
      storage: "sqlite",
      postgresUrl: undefined,
      resonateAuth: false,
      push: false,
      apiRuntime: "bun",
      workersPerGroup: 1,
      apiProcesses: 1,
      sandboxPort: 4010,
      givenPaymentUrl: undefined,
      givenCarrierUrl: undefined,
    });
  });

  test("co-located mode sends every durable function to the API's own group", () => {
    expect(targetsFor(loadConfig({ MODE: "colocated" }), "api")).toEqual({
      orders: "api",
      pricing: "api",
      db: "api",
      business: "api",
    });
  });

  test("HTTP push is off unless RESONATE_PUSH_HOST names where the server reaches this process", () => {
    expect(loadConfig({}).resonatePush).toBeUndefined();
    expect(
      loadConfig({ RESONATE_PUSH_HOST: "10.0.0.7", RESONATE_PUSH_TOKEN: "0123456789abcdef" }).resonatePush,
    ).toEqual({ host: "10.0.0.7", port: 0, token: "0123456789abcdef" });
    expect(
      loadConfig({
        RESONATE_PUSH_HOST: "[::1]",
        RESONATE_PUSH_PORT: "9100",
        RESONATE_PUSH_TOKEN: "0123456789abcdef",
      }).resonatePush,
    ).toEqual({ host: "::1", port: 9100, token: "0123456789abcdef" });
  });

  const PUSH_TOKEN_REQUIRED =
    "RESONATE_PUSH_TOKEN is required with RESONATE_PUSH_HOST: at least 16 characters, no spaces (the Resonate server's --transports-http-push-auth-token)";
  const PUSH_TOKEN_FORM =
    "RESONATE_PUSH_TOKEN must be at least 16 characters, no spaces (the Resonate server's --transports-http-push-auth-token)";
  const bad: [Record<string, string>, string][] = [
    [{ PORT: "80a" }, 'PORT must be a whole number from 0 to 65535, got "80a"'],
    [{ PORT: "70000" }, 'PORT must be a whole number from 0 to 65535, got "70000"'],
    [{ QUOTE_DEADLINE_MS: "-5" }, 'QUOTE_DEADLINE_MS must be a whole number from 1 to 600000, got "-5"'],
    [{ QUOTE_DEADLINE_MS: "1.5" }, 'QUOTE_DEADLINE_MS must be a whole number from 1 to 600000, got "1.5"'],
    [
      { QUOTE_DEADLINE_MS: "5000", QUOTE_MAX_WAIT_MS: "1000" },
      "QUOTE_MAX_WAIT_MS (1000) must not be below QUOTE_DEADLINE_MS (5000)",
    ],
    [{ PRICE_REFRESH_MS: "50" }, 'PRICE_REFRESH_MS must be a whole number from 100 to 86400000, got "50"'],
    [{ PRICE_REFRESH_MS: "3e4" }, 'PRICE_REFRESH_MS must be a whole number from 100 to 86400000, got "3e4"'],
    [{ MODE: "cluster" }, 'MODE must be one of distributed, colocated, got "cluster"'],
    [{ DATABASE_URL: "mysql://x" }, 'DATABASE_URL must be a sqlite:// or postgres:// URL, got "mysql://x"'],
    [
      { WEBHOOK_SECRET: "secret" },
      "WEBHOOK_SECRET must be a Standard Webhooks secret: whsec_ followed by base64",
    ],
    [{ RESONATE_URL: "localhost:8001" }, 'RESONATE_URL must be an http(s) URL, got "localhost:8001"'],
    [{ RESONATE_TIMEOUT: "10s" }, 'RESONATE_TIMEOUT must be a whole number from 1 to 600000, got "10s"'],
    [{ BENCH_ROUTES: "yes" }, 'BENCH_ROUTES must be 1/true or 0/false, got "yes"'],
    [{ AUTH_PUBLIC_KEY: "k.pem", AUTH_JWKS: "k.json" }, "AUTH_PUBLIC_KEY and AUTH_JWKS: set one, not both"],
    [
      { AUTH_PUBLIC_KEY: "k.pem", AUTH_ISSUER: "me" },
      "AUTH_ISSUER and AUTH_AUDIENCE are required with AUTH_PUBLIC_KEY or AUTH_JWKS",
    ],
    [
      { AUTH_JWKS: "k.json", AUTH_AUDIENCE: "api" },
      "AUTH_ISSUER and AUTH_AUDIENCE are required with AUTH_PUBLIC_KEY or AUTH_JWKS",
    ],
    [{ AUTH_CLOCK_SKEW_S: "3600" }, 'AUTH_CLOCK_SKEW_S must be a whole number from 0 to 300, got "3600"'],
    [
      { AUTH_OPERATOR_SCOPE: "ops admin" },
      'AUTH_OPERATOR_SCOPE must be one scope token (no spaces or quotes), got "ops admin"',
    ],
    [{ AUTH_DISABLED: "maybe" }, 'AUTH_DISABLED must be 1/true or 0/false, got "maybe"'],
    [{ API_PROCESSES: "0" }, 'API_PROCESSES must be a whole number from 1 to 64, got "0"'],
    [{ API_PROCESSES: "65" }, 'API_PROCESSES must be a whole number from 1 to 64, got "65"'],
    [{ API_PROCESSES: "two" }, 'API_PROCESSES must be a whole number from 1 to 64, got "two"'],
    [
      { SHUTDOWN_GRACE_MS: "120001" },
      'SHUTDOWN_GRACE_MS must be a whole number from 0 to 120000, got "120001"',
    ],
    [{ SHUTDOWN_GRACE_MS: "-1" }, 'SHUTDOWN_GRACE_MS must be a whole number from 0 to 120000, got "-1"'],
    [{ WORKFLOW_BUILD: "v2" }, 'WORKFLOW_BUILD must be one of current, next, got "v2"'],
    [{ SHUTDOWN_LISTEN_MS: "1s" }, 'SHUTDOWN_LISTEN_MS must be a whole number from 0 to 60000, got "1s"'],
    [{ API_PID: "api/1" }, `API_PID must be 1 to 128 letters, digits, '.', '_' or '-', got "api/1"`],
    [{ WORKER_PID: "db 1" }, `WORKER_PID must be 1 to 128 letters, digits, '.', '_' or '-', got "db 1"`],
    [{ RESONATE_PUSH_HOST: "127.0.0.1" }, PUSH_TOKEN_REQUIRED],
    [{ RESONATE_PUSH_HOST: "127.0.0.1", RESONATE_PUSH_TOKEN: "short" }, PUSH_TOKEN_FORM],
    [{ RESONATE_PUSH_HOST: "127.0.0.1", RESONATE_PUSH_TOKEN: "a token with spaces" }, PUSH_TOKEN_FORM],
    [{ RESONATE_PUSH_TOKEN: "0123456789abcdef" }, "RESONATE_PUSH_TOKEN is set without RESONATE_PUSH_HOST"],
    [
      {
        RESONATE_PUSH_HOST: "127.0.0.1",
        RESONATE_PUSH_TOKEN: "0123456789abcdef",
        RESONATE_PUSH_PORT: "9100",
        API_PROCESSES: "2",
      },
      "RESONATE_PUSH_PORT=9100 with API_PROCESSES=2: each process needs a push port of its own; leave it 0",
    ],
    [
      { RESONATE_PUSH_HOST: "http://api:9000", RESONATE_PUSH_TOKEN: "0123456789abcdef" },
      'RESONATE_PUSH_HOST must be a host name or an IP address, got "http://api:9000"',
    ],
    [
      { RESONATE_PUSH_HOST: "api", RESONATE_PUSH_TOKEN: "0123456789abcdef", RESONATE_PUSH_PORT: "x" },
      'RESONATE_PUSH_PORT must be a whole number from 0 to 65535, got "x"',
    ],
  ];
  for (const [env, message] of bad) {
    // The API's own settings are refused by the API; npm start's (API_PROCESSES) by npm start, which checks them all.
    const load = Object.keys(env).every((name) => name in ROLES.api.properties)
      ? loadConfig
      : loadLauncherConfig;
    test(`refuses ${JSON.stringify(env)} with an error that names the setting`, () => {
      expect(() => load(env)).toThrow(new ConfigError(message));
    });
  }
});

describe("the API's callers are checked unless that is turned off in so many words", () => {
  test("no key and no AUTH_DISABLED=1 is refused, as is a key with AUTH_DISABLED=1", () => {
    expect(() => requireCallerAuth(loadConfig({}).auth)).toThrow(/^AUTH_PUBLIC_KEY or AUTH_JWKS is required/);
    expect(() =>
      requireCallerAuth(
        loadConfig({ AUTH_PUBLIC_KEY: "k.pem", AUTH_ISSUER: "i", AUTH_AUDIENCE: "a", AUTH_DISABLED: "1" })
          .auth,
      ),
    ).toThrow("AUTH_DISABLED=1 and a key (AUTH_PUBLIC_KEY or AUTH_JWKS): set one, not both");
    expect(() => requireCallerAuth(loadConfig({ AUTH_DISABLED: "1" }).auth)).not.toThrow();
  });

  test("the API process given no key exits 2 with that message, before it serves", async () => {
    await using api = spawnProcess({
      name: "api",
      cmd: [process.execPath, resolve(import.meta.dir, "../../src/main.ts")],
      env: {
        WEBHOOK_SECRET: TEST_SECRET,
        PORT: "0",
        RESONATE_URL: "http://127.0.0.1:9",
        AUTH_PUBLIC_KEY: undefined,
        AUTH_JWKS: undefined,
        AUTH_DISABLED: undefined,
      },
    });
    expect(await api.exited).toBe(2);
    expect(api.output()).toContain("api: AUTH_PUBLIC_KEY or AUTH_JWKS is required");
    expect(api.output()).not.toContain("api listening");
  });
});
