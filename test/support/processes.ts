import { resolve } from "node:path";
import { type EventStream, openEventStream } from "../../core/resonate/http-client.ts";
import { type ChildProcess, type ResonateServer, spawnProcess } from "../../harness/index.ts";

const WORKER = resolve(import.meta.dir, "sdk-worker-fixture.ts");
const CLIENT = resolve(import.meta.dir, "sdk-client-fixture.ts");

/** Outer bound for a test that starts processes; each wait inside has its own, shorter deadline. */
export const E2E_TIMEOUT = 60_000;

/** A unique id prefix per test run, so runs that share nothing also collide on nothing. */
export const runId = () => `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

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
