import { afterEach, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import {
  type Capability,
  type ChildProcess,
  missingCapability,
  type ResonateServer,
  spawnProcess,
} from "../harness/index.ts";
import { type EventStream, openEventStream } from "../src/resonate/http-client.ts";

const WORKER = resolve(import.meta.dir, "fixtures/sdk-worker-fixture.ts");
const CLIENT = resolve(import.meta.dir, "fixtures/sdk-client-fixture.ts");

/**
 * For a test file: a maker of state-file paths, each in a temporary
 * directory of its own that is removed after the test that made it.
 */
export function tempDbPaths(prefix: string): () => string {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  return () => {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    dirs.push(dir);
    return join(dir, "resonate.db");
  };
}

/** Starts `sdk-worker-fixture.ts` in `group` as `pid` and waits for its ready line (its message stream is open then). */
export async function startWorkerFixture(
  server: Pick<ResonateServer, "url">,
  { group, pid, ttl = 3000 }: { group: string; pid: string; ttl?: number },
): Promise<ChildProcess> {
  const child = spawnProcess({
    name: `worker ${group}/${pid}`,
    cmd: [process.execPath, WORKER],
    env: { RESONATE_URL: server.url, GROUP: group, PID: pid, TTL: String(ttl) },
    readyLine: /^worker ready /,
  });
  try {
    await child.ready;
  } catch (error) {
    await child.stop();
    throw error;
  }
  return child;
}

/** Starts `sdk-client-fixture.ts`, which calls `func` by RPC at `target` and prints the result. */
export function startClientFixture(
  server: Pick<ResonateServer, "url">,
  { id, func, target, args }: { id: string; func: string; target: string; args: unknown[] },
): ChildProcess {
  return spawnProcess({
    name: `client ${id}`,
    cmd: [process.execPath, CLIENT, id, func, target, JSON.stringify(args)],
    env: { RESONATE_URL: server.url },
    readyLine: /^submitted /,
  });
}

/**
 * Opens the message stream of `group`/`pid` on `server` as a process would,
 * and hands `onMessage` every message on it, parsed; resolves once it is open.
 */
export function openMessageStream(
  server: Pick<ResonateServer, "url">,
  group: string,
  pid: string,
  onMessage: (message: unknown) => void,
): Promise<EventStream> {
  return openEventStream(
    new URL(`${server.url}/poll/${group}/${pid}`),
    { accept: "text/event-stream" },
    (event) => {
      if (event.type === "message") onMessage(JSON.parse(event.data));
    },
    5_000,
  );
}

/** The `result <json>` a client fixture printed, parsed; throws if it has not printed one. */
export function clientResult(client: ChildProcess): unknown {
  const match = /^result (.*)$/m.exec(client.output());
  if (!match?.[1]) throw new Error(`no result yet from ${client.name}:\n${client.output()}`);
  return JSON.parse(match[1]);
}

/** How many times a worker fixture ran the step `name` of invocation `id`. */
export function stepCount(workers: ChildProcess[], name: string, id: string): number {
  const line = `step ${name} ${id}`;
  return workers.reduce(
    (n, w) =>
      n +
      w
        .output()
        .split("\n")
        .filter((l) => l === line).length,
    0,
  );
}

/** Outer bound for a test that starts processes; each wait inside has its own, shorter deadline. */
export const E2E_TIMEOUT = 60_000;

/** A unique id prefix per test run, so runs that share nothing also collide on nothing. */
export const runId = () => `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

/**
 * `test` when the server this run uses (ours, or the real one that
 * `RESONATE_BIN` names) has `capability`; otherwise a `test.skip` whose name
 * says what is missing. The one place a test asks which server it runs on.
 *
 *   requireCapability("trace")("--trace writes one line per call", async () => { … });
 */
export function requireCapability(capability: Capability): typeof test {
  const missing = missingCapability(capability);
  if (missing === undefined) return test;
  const skip = (name: string, fn: Parameters<typeof test.skip>[1], timeout?: number) =>
    test.skip(`${name} (skipped on the real server: ${missing})`, fn, timeout);
  return skip as unknown as typeof test;
}
