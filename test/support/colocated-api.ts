import { join } from "node:path";
import { Resonate } from "@resonatehq/sdk";
import { type Config, GROUPS, loadConfig, targetsFor } from "../../core/config.ts";
import { startSandbox } from "../../harness/fakes/sandbox.ts";
import { openScope } from "../../harness/scope.ts";
import { type App, createApp } from "../../src/app.ts";
import { callerAuth } from "../../src/auth/service.ts";
import { makeDeps } from "../../src/deps.ts";
import { WaitGate } from "../../src/quotes/service.ts";
import { registerGroup } from "../../workers/register.ts";
import { TEST_API_AUTH } from "./api-auth.ts";
import { jsonInit, withAuthorization } from "./http.ts";
import { TEST_SECRET } from "./secrets.ts";

/**
 * The API built in this process in co-located mode: Resonate's in-process
 * network, every durable function registered here, a real SQLite database
 * and the sandbox third parties on a free port. Requests go through
 * `app.handle`; the app also listens on a free port only so the payment
 * provider can deliver its webhooks. Its webhook secret is `TEST_SECRET`;
 * it checks callers' tokens with `TEST_API_AUTH`'s key, and `request` sends
 * the tests' default token (see `withAuthorization`).
 */
export async function startColocatedApi(
  env: Record<string, string> = {},
  opts: {
    /** Aborting it begins the app's stop, as SIGTERM does in the API process (see `Deps.draining`). */
    draining?: AbortSignal;
  } = {},
) {
  const scope = openScope("api-test-");
  const stop = () => scope.close();
  try {
    const sandbox = startSandbox({
      dataDir: join(scope.dir, "sandbox"),
      webhookUrl: "http://127.0.0.1:9/not-listening-yet",
      webhookSecret: TEST_SECRET,
      webhookDelayMs: 20,
    });
    scope.defer(() => sandbox.stop());
    const config: Config = loadConfig({
      DATA_DIR: scope.dir,
      MODE: "colocated",
      WEBHOOK_SECRET: TEST_SECRET,
      PAYMENT_URL: sandbox.paymentUrl,
      CARRIER_URL: sandbox.carrierUrl,
      ...TEST_API_AUTH.env,
      ...env,
    });
    const resonate = new Resonate({ group: "api", pid: "api-test" });
    const targets = targetsFor(config, "api");
    const closers: { close(): Promise<void> }[] = [];
    // Stopped in reverse: the app, then the client, then what the groups registered.
    scope.defer(async () => {
      for (const c of closers) await c.close();
    });
    scope.defer(() => resonate.stop());
    for (const g of GROUPS) closers.push(await registerGroup(resonate, g, config, targets));
    const quoteGate = new WaitGate(config.quoteMaxWaiting);
    const deps = makeDeps(
      resonate,
      config,
      targets,
      Date.now,
      opts.draining ? { draining: opts.draining } : {},
    );
    const app: App = createApp(deps, {
      webhookSecret: TEST_SECRET,
      auth: await callerAuth(config.auth),
      quoteGate,
    });
    app.listen({ port: 0, hostname: "127.0.0.1" });
    scope.defer(() => app.stop());
    sandbox.payment.webhookUrl = `http://127.0.0.1:${app.server?.port}/webhooks/payment`;

    const request = async (
      method: string,
      path: string,
      body?: unknown,
      headers: Record<string, string> = {},
    ) =>
      app.handle(
        new Request(`http://api.test${path}`, jsonInit(method, body, await withAuthorization(path, headers))),
      );
    return { app, deps, config, sandbox, resonate, quoteGate, request, stop, [Symbol.asyncDispose]: stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
