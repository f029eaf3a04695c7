/**
 * A worker process of one group.
 *
 *   RESONATE_URL=http://127.0.0.1:8001 bun workers/main.ts <order-workers|pricing-workers|db|business>
 *
 * Registers the group's durable functions, prints `worker ready <group>
 * <pid>` and stops cleanly on SIGTERM/SIGINT. Settings come from the same
 * environment variables as the API (see README).
 */
import { ConfigError, GROUPS, type Group, loadConfig, targetsFor } from "../src/config.ts";
import { exitWithParent } from "../src/parent-process.ts";
import { resonateClient } from "../src/resonate/network.ts";
import { registerGroup } from "./register.ts";

const group = process.argv[2] as Group | undefined;
if (!group || !GROUPS.includes(group)) {
  console.error(`usage: bun workers/main.ts <${GROUPS.join("|")}>`);
  process.exit(2);
}

let config: ReturnType<typeof loadConfig>;
try {
  config = loadConfig();
} catch (error) {
  console.error(error instanceof ConfigError ? `worker ${group}: ${error.message}` : error);
  process.exit(2);
}
if (!config.resonateUrl) {
  console.error(`worker ${group}: RESONATE_URL is required (a worker talks to a Resonate server)`);
  process.exit(2);
}

const pid = process.env.WORKER_PID || `${group}-${process.pid}`;
const { resonate, streamOpen } = resonateClient(config, group, pid);
const resources = await registerGroup(resonate, group, config, targetsFor(config));
await streamOpen;
console.log(`worker ready ${group} ${pid}`);

let stopping = false;
async function shutdown() {
  if (stopping) return;
  stopping = true;
  await resonate.stop();
  await resources.close();
  process.exit(0);
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
exitWithParent(shutdown);
