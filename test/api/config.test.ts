import { describe, expect, test } from "bun:test";
import { ConfigError, DEFAULTS, loadConfig, targetsFor } from "../../src/config.ts";

describe("configuration from the environment", () => {
  test("with nothing set, every setting has its documented default", () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: Number(DEFAULTS.PORT),
      resonateUrl: undefined,
      quoteDeadlineMs: 1_000,
      quoteMaxWaiting: 200,
      priceRefreshMs: 30_000,
      colocated: false,
      benchRoutes: false,
      paymentUrl: "http://127.0.0.1:4010/payment",
      resonateToken: undefined,
      resonateTimeoutMs: 10_000,
    });
    expect(config.databaseUrl).toStartWith("sqlite://");
    expect(targetsFor(config)).toEqual({
      orders: "order-workers",
      pricing: "pricing-workers",
      db: "db",
      business: "business",
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
    [{ PRICE_REFRESH_MS: "" }, 'PRICE_REFRESH_MS must be a whole number from 100 to 86400000, got ""'],
    [{ MODE: "cluster" }, 'MODE must be "distributed" or "colocated", got "cluster"'],
    [{ DATABASE_URL: "mysql://x" }, 'DATABASE_URL must start with sqlite:// or postgres://, got "mysql://x"'],
    [
      { WEBHOOK_SECRET: "secret" },
      "WEBHOOK_SECRET must be a Standard Webhooks secret: whsec_ followed by base64",
    ],
    [{ RESONATE_URL: "localhost:8001" }, 'RESONATE_URL must be an http(s) URL, got "localhost:8001"'],
    [{ RESONATE_TIMEOUT: "10s" }, 'RESONATE_TIMEOUT must be a whole number from 1 to 600000, got "10s"'],
    [{ BENCH_ROUTES: "yes" }, 'BENCH_ROUTES must be 1/true or 0/false, got "yes"'],
  ];
  for (const [env, message] of bad) {
    test(`refuses ${JSON.stringify(env)} with an error that names the setting`, () => {
      expect(() => loadConfig(env)).toThrow(new ConfigError(message));
    });
  }
});
