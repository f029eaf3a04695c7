import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Resonate } from "@resonatehq/sdk";
import { startSandbox } from "../../harness/fakes/sandbox.ts";
import { webhookHeaders } from "../../harness/webhooks.ts";
import { type App, createApp } from "../../src/app.ts";
import { type Config, GROUPS, loadConfig, targetsFor } from "../../src/config.ts";
import { makeDeps } from "../../src/deps.ts";
import { WaitGate } from "../../src/quotes/service.ts";
import { registerGroup } from "../../workers/register.ts";

export const TEST_SECRET = `whsec_${Buffer.from("route-tests-secret-0123456789abcd").toString("base64")}`;

/**
 * The API built in this process in co-located mode: Resonate's in-process
 * network, every durable function registered here, a real SQLite database
 * and the sandbox third parties on a free port. Requests go through
 * `app.handle`; the app also listens on a free port only so the payment
 * provider can deliver its webhooks.
 */
export async function startColocatedApi(env: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), "api-test-"));
  const sandbox = startSandbox({
    dataDir: join(dir, "sandbox"),
    webhookUrl: "http://127.0.0.1:9/not-listening-yet",
    webhookSecret: TEST_SECRET,
    webhookDelayMs: 20,
  });
  const config: Config = loadConfig({
    DATA_DIR: dir,
    MODE: "colocated",
    WEBHOOK_SECRET: TEST_SECRET,
    PAYMENT_URL: sandbox.paymentUrl,
    CARRIER_URL: sandbox.carrierUrl,
    ...env,
  });
  const resonate = new Resonate({ group: "api", pid: "api-test" });
  const targets = targetsFor(config, "api");
  const closers: { close(): Promise<void> }[] = [];
  for (const g of GROUPS) closers.push(await registerGroup(resonate, g, config, targets));
  const quoteGate = new WaitGate(config.quoteMaxWaiting);
  const app: App = createApp(makeDeps(resonate, config, targets), { webhookSecret: TEST_SECRET, quoteGate });
  app.listen({ port: 0, hostname: "127.0.0.1" });
  sandbox.payment.webhookUrl = `http://127.0.0.1:${app.server?.port}/webhooks/payment`;

  const request = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
    app.handle(
      new Request(`http://api.test${path}`, {
        method,
        headers: body === undefined ? headers : { "content-type": "application/json", ...headers },
        body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
      }),
    );
  const stop = async () => {
    await app.stop();
    await resonate.stop();
    for (const c of closers) await c.close();
    await sandbox.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  return { app, config, sandbox, resonate, quoteGate, request, stop, [Symbol.asyncDispose]: stop };
}

/** Signs a webhook body the way a Standard Webhooks sender does. */
export function signedHeaders(
  body: string,
  secret = TEST_SECRET,
  at = new Date(),
  id = `msg_${crypto.randomUUID()}`,
) {
  return webhookHeaders(secret, body, id, at);
}

/** A response's status and parsed JSON body. */
export const json = async (res: Response) => ({
  status: res.status,
  body: (await res.json()) as Record<string, unknown>,
});
