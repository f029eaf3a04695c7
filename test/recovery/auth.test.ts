/**
 * Recovery with tokens checked (`startSystem({ resonateAuth: true })`): a
 * worker killed in the middle of a step is replaced by one with the same
 * token, which finishes the work; the Resonate server killed and restarted
 * takes the same key and every process's token again.
 *
 *   bun test test/recovery/auth.test.ts   (RESONATE_BIN=… for the real server)
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { PROTOCOL_VERSION, protocolCall, type System, startSystem, waitFor } from "../../harness/index.ts";
import { TEST_API_AUTH } from "../support/api-auth.ts";
import { answers200, call, jobDone, requestQuote } from "../support/http.ts";
import { E2E_TIMEOUT } from "../support/processes.ts";
import { TEST_SECRET } from "../support/secrets.ts";

let system: System;
beforeAll(async () => {
  system = await startSystem({
    resonateAuth: true,
    server: { retryTimeoutMs: 1_000, tickMs: 100 },
    supervise: { restartDelayMs: 100 },
    sandbox: { webhookDelayMs: 50 },
    webhookSecret: TEST_SECRET,
    apiAuth: TEST_API_AUTH,
    env: { RESONATE_TTL_MS: "1000", PRICING_DELAY_MS: "1500" },
  });
}, E2E_TIMEOUT);
afterAll(() => system?.stop(), E2E_TIMEOUT);

/** An admin's protocol request, with the token in the envelope as the server reads it. */
async function adminGetTask(id: string) {
  const res = await fetch(system.resonateUrl, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      kind: "task.get",
      head: { corrId: "t", version: PROTOCOL_VERSION, auth: system.resonateTokens?.admin },
      data: { id },
    }),
  });
  return {
    status: res.status,
    body: (await res.json()) as { data: { task?: { state: string; pid?: string } } },
  };
}

describe("recovery while the Resonate server checks tokens", () => {
  test(
    "a pricing worker killed while it holds a quote's task: its replacement, with the same token, finishes it",
    async () => {
      const quote = await requestQuote({ url: system.apiUrl }, { sku: "sku-51", qty: 2 }, 0.2);
      expect(quote.status).toBe(202);
      const quoteId = String(quote.body.quote_id);
      await waitFor(async () => (await adminGetTask(quoteId)).body.data.task?.state === "acquired", {
        message: "quote's task acquired",
      });
      const slot = system.workers.slots.find((s) => s.group === "pricing-workers");
      if (!slot) throw new Error("no pricing worker");
      system.workers.kill(slot);
      const done = await answers200({ url: system.apiUrl }, `/price-quote/${quoteId}`);
      expect(done.body.quote_id).toBe(quoteId);
      expect(slot.generations).toBeGreaterThanOrEqual(2);
    },
    E2E_TIMEOUT,
  );

  test(
    "the server killed and restarted: the same key takes every process's token again",
    async () => {
      const server = system.server;
      if (!server) throw new Error("no server");
      await call({ url: system.apiUrl }, "POST", "/jobs", {
        order_id: "auth-restart-1",
        items: [{ sku: "sku-52", qty: 1 }],
      });
      await server.kill();
      await server.restart();
      expect((await protocolCall(server.url, "promise.get", { id: "order:auth-restart-1" })).status).toBe(
        401,
      );
      expect((await jobDone({ url: system.apiUrl }, "order:auth-restart-1", 40_000)).result).toMatchObject({
        status: "completed",
      });
      // A checkout runs on business, whose token is scoped to checkout: ids.
      const placed = await call(
        { url: system.apiUrl },
        "POST",
        "/users/auth-user/orders",
        { cart: [{ sku: "sku-53", qty: 1 }] },
        { "idempotency-key": "auth-restart-k" },
      );
      expect(placed.status).toBe(201);
    },
    E2E_TIMEOUT,
  );
});
