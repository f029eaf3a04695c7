/**
 * The API process.
 *
 *   RESONATE_URL=http://127.0.0.1:8001 WEBHOOK_SECRET=whsec_… bun src/main.ts
 *
 * With MODE=colocated it also registers every durable function and runs
 * them in this process. Prints `api listening on http://127.0.0.1:<port>`.
 */
import { registerGroup } from "../workers/register.ts";
import { createApp } from "./app.ts";
import { ConfigError, GROUPS, loadConfig, targetsFor } from "./config.ts";
import { makeDeps } from "./deps.ts";
import { resonateClient } from "./shared/network.ts";
import { exitWithParent } from "./shared/parent.ts";

let config: ReturnType<typeof loadConfig>;
try {
  config = loadConfig();
  if (!config.webhookSecret) throw new ConfigError("WEBHOOK_SECRET is required (npm start generates one)");
} catch (error) {
  console.error(error instanceof ConfigError ? `api: ${error.message}` : error);
  process.exit(2);
}

const group = "api";
const { resonate, streamOpen } = resonateClient(config, group, process.env.API_PID || `api-${process.pid}`);
const closers: { close(): Promise<void> }[] = [];
const targets = targetsFor(config, group);
if (config.colocated) {
  for (const g of GROUPS) closers.push(await registerGroup(resonate, g, config, targets));
}

const app = createApp(makeDeps(resonate, config, targets), {
  webhookSecret: config.webhookSecret as string,
  benchRoutes: config.benchRoutes,
});
// Results reach this process on its message stream: it listens once that is open.
await streamOpen;
app.listen({ port: config.port, hostname: process.env.HOST || "127.0.0.1" });
const url = `http://${app.server?.hostname}:${app.server?.port}`;
console.log(
  `api listening on ${url} (docs at ${url}/docs, mode ${config.colocated ? "colocated" : "distributed"})`,
);

let stopping = false;
async function shutdown() {
  if (stopping) return;
  stopping = true;
  await app.stop();
  await resonate.stop();
  for (const c of closers) await c.close();
  process.exit(0);
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
exitWithParent(shutdown);
