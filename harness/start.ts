/**
 * Starts the whole system on one machine with embedded defaults.
 *
 *   npm start            (or: bun harness/start.ts)
 *
 * Without RESONATE_URL it runs the harness Resonate server on a SQLite file
 * in DATA_DIR (default .data/) on RESONATE_PORT (default 8001). Stops
 * everything it started on SIGINT/SIGTERM.
 */
import { join, resolve } from "node:path";
import { startResonateServer } from "./resonate-server.ts";

const dataDir = resolve(process.env.DATA_DIR ?? ".data");
const port = Number(process.env.RESONATE_PORT ?? 8001);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`RESONATE_PORT must be a port number, got "${process.env.RESONATE_PORT}"`);
  process.exit(2);
}

const server = await startResonateServer({ port, dbPath: join(dataDir, "resonate.db") });
console.log(`resonate server: ${server.url} (state in ${server.dbPath})`);

let stopping = false;
async function shutdown() {
  if (stopping) return;
  stopping = true;
  await server.stop();
  process.exit(0);
}
process.on("SIGINT", shutdown);
process.on("SIGTERM", shutdown);
