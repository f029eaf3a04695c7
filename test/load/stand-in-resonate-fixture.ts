/**
 * Stands in for the real `resonate` binary where there is none (CI): takes
 * `resonate serve`'s flags as `startResonateServer` passes them and runs our
 * harness server with the same settings, so the load tool's `--server real`
 * and `--server both` paths can be tested without the real server.
 *
 *   bun test/load/stand-in-resonate-fixture.ts serve --server-port 8001 --storage-sqlite-path r.db …
 *
 * A test points RESONATE_BIN at a shell script that runs this file.
 */
import { resolve } from "node:path";

const SERVER_MAIN = resolve(import.meta.dir, "../../harness/resonate-server/main.ts");
/** The real server's flag → ours; `null` drops the flag and its value. */
const RENAMED: Record<string, string | null> = {
  "--server-port": "--port",
  "--storage-sqlite-path": "--db",
  "--observability-metrics-port": null,
  "--level": null,
};

const [command, ...rest] = process.argv.slice(2);
if (command !== "serve") throw new Error(`stand-in resonate: only "serve" is stood in for, got "${command}"`);
const args: string[] = [];
for (let i = 0; i < rest.length; i++) {
  const flag = rest[i] as string;
  const renamed = RENAMED[flag];
  if (renamed === undefined) args.push(flag);
  else if (renamed === null) i++;
  else args.push(renamed, rest[++i] as string);
}

const server = Bun.spawn({
  cmd: [process.execPath, SERVER_MAIN, ...args],
  stdio: ["ignore", "inherit", "inherit"],
});
for (const signal of ["SIGTERM", "SIGINT"] as const) process.on(signal, () => server.kill(signal));
process.exit(await server.exited);
