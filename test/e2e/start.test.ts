import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { freePort, sendWebhook, spawnProcess, waitFor } from "../../harness/index.ts";
import { call } from "../support/http.ts";
import { E2E_TIMEOUT } from "../support/processes.ts";
import { TEST_SECRET } from "../support/secrets.ts";
import { tempDir } from "../support/temp.ts";

const START = resolve(import.meta.dir, "../../launcher/main.ts");

/** Pids from the launcher's `start: worker <group>#<slot> pid <n>` lines, in order. */
const workerPids = (output: string) =>
  [...output.matchAll(/^start: worker \S+ pid (\d+)$/gm)].map((m) => Number(m[1]));

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/**
 * Whether no process listens on `port` any more: a server that lingers after
 * its launcher died keeps it bound even when it no longer answers.
 */
const portReleased = (port: number) => {
  try {
    Bun.listen({ hostname: "0.0.0.0", port, socket: { data() {} } }).stop(true);
    return true;
  } catch {
    return false;
  }
};

/** The launcher's environment: its state in `dataDir`, free ports for the API, server and sandbox, and `extra`. */
const launcherEnv = (dataDir: string, extra: Record<string, string>) => ({
  DATA_DIR: dataDir,
  PORT: String(freePort()),
  RESONATE_PORT: String(freePort()),
  SANDBOX_PORT: String(freePort()),
  WEBHOOK_SECRET: TEST_SECRET,
  ...extra,
});

describe("npm start (launcher/main.ts)", () => {
  test(
    "starts everything, stops every process it started on SIGTERM, and resumes in-flight work on restart",
    async () => {
      using dataDir = tempDir("start-test-");
      const env = launcherEnv(dataDir.path, { RESONATE_TTL_MS: "2000" });
      const api = { url: `http://127.0.0.1:${env.PORT}` };
      const launch = () =>
        spawnProcess({
          name: "start",
          cmd: [process.execPath, START],
          env,
          readyLine: /^ready: API /,
          readyTimeoutMs: 30_000,
        });
      await using first = launch();
      await first.ready;
      // The development token it wrote, as its lines say; a call without one is refused.
      const tokenFile = join(dataDir.path, "api-token");
      expect(first.output()).toContain(`is in ${tokenFile}`);
      const firstToken = readFileSync(tokenFile, "utf8").trim();
      const as = { authorization: `Bearer ${firstToken}` };
      expect((await call(api, "GET", "/jobs/ship:held-1", undefined, { authorization: "" })).status).toBe(
        401,
      );
      const pids = workerPids(first.output());
      expect(pids).toHaveLength(4);
      // A worker that dies is replaced.
      const victim = pids[0] as number;
      process.kill(victim, "SIGKILL");
      await waitFor(() => workerPids(first.output()).length === 5, {
        message: "worker replaced",
      });
      pids.push(...workerPids(first.output()).slice(4));
      expect(await call(api, "POST", "/orders/held-1/approve-and-ship", undefined, as)).toMatchObject({
        status: 202,
      });
      await waitFor(
        async () => (await call(api, "GET", "/jobs/ship:held-1", undefined, as)).body.status === "running",
      );
      expect(await first.stop()).toBe(0);
      for (const pid of pids) expect(alive(pid)).toBe(false);

      await using second = launch();
      await second.ready;
      const deliveries = await sendWebhook({
        url: `${api.url}/webhooks/approval/held-1`,
        secret: TEST_SECRET,
        body: JSON.stringify({ approved: true, approver: "after-restart" }),
        retries: 40,
        backoffMs: 50,
      });
      expect(deliveries.at(-1)?.status).toBe(200);
      const done = await waitFor(
        async () => {
          // The key pair was kept: the first start's token is still good.
          const job = await call(api, "GET", "/jobs/ship:held-1", undefined, as);
          return job.body.status === "done" ? job.body : undefined;
        },
        // The stop can catch the workflow's RPC to db just after its execute went to a db
        // worker that was stopping: the task is then offered again after the server's retry
        // timeout (30 s by default, as on the real server), not at once.
        { timeout: 40_000, message: "held order shipped after restart" },
      );
      expect(done.result).toMatchObject({ status: "shipped", approver: "after-restart" });

      // A launcher killed outright (no chance to clean up) still leaves no worker and no server behind.
      const orphans = workerPids(second.output());
      const resonatePort = Number(env.RESONATE_PORT);
      expect((await fetch(`http://127.0.0.1:${resonatePort}/health`)).status).toBe(200);
      second.kill("SIGKILL");
      await second.exited;
      await waitFor(() => orphans.every((pid) => !alive(pid)), {
        message: "workers of a killed launcher exit",
      });
      await waitFor(() => portReleased(resonatePort), {
        message: "the Resonate server of a killed launcher exits",
      });
    },
    E2E_TIMEOUT + 30_000,
  );

  test(
    "API_PROCESSES=2 npm start serves with two API processes on one port, and a SIGINT sent to npm itself stops every process",
    async () => {
      using dataDir = tempDir("start-test-");
      const env = launcherEnv(dataDir.path, { API_PROCESSES: "2", MODE: "colocated" });
      const api = { url: `http://127.0.0.1:${env.PORT}` };
      await using npm = spawnProcess({
        name: "npm start",
        cmd: ["npm", "start", "--silent"],
        cwd: resolve(import.meta.dir, "../.."),
        env,
        readyLine: /^ready: API /,
        readyTimeoutMs: 30_000,
      });
      await npm.ready;
      expect(npm.output()).toContain(`\nready: API ${api.url} (2 processes) on bun `);
      const apiPids = [...npm.output().matchAll(/^start: API on bun, pid (\d+)$/gm)].map((m) => Number(m[1]));
      expect(apiPids).toHaveLength(2);
      // Both listen on the one port: scrapes through it (each on a new connection) come from both, each naming its own pid.
      const token = readFileSync(join(dataDir.path, "api-token"), "utf8").trim();
      const seen = new Set<string>();
      await waitFor(
        async () => {
          const text = await (await fetch(`${api.url}/metrics`, { headers: { connection: "close" } })).text();
          const pid = /^api_process_info\{pid="([^"]+)"\} 1$/m.exec(text)?.[1];
          if (pid) seen.add(pid);
          return seen.size === 2 || undefined;
        },
        { message: "both API processes answered on the one port" },
      );
      expect(
        await call(
          api,
          "POST",
          "/price-quote",
          { sku: "sku-1", qty: 2 },
          { authorization: `Bearer ${token}` },
        ),
      ).toMatchObject({ status: 200 });
      npm.kill("SIGINT");
      await npm.exited;
      await waitFor(() => apiPids.every((pid) => !alive(pid)) || undefined, {
        message: "the API processes stopped",
      });
      await waitFor(() => portReleased(Number(env.RESONATE_PORT)) || undefined, {
        message: "the Resonate server stopped",
      });
      expect(portReleased(Number(env.PORT))).toBe(true);
    },
    E2E_TIMEOUT,
  );

  test("refuses API_PROCESSES outside 1-64 with exit 2 and a message that names it, before it starts anything", async () => {
    using dataDir = tempDir("start-test-");
    await using run = spawnProcess({
      name: "start",
      cmd: [process.execPath, START],
      env: { ...launcherEnv(dataDir.path, {}), API_PROCESSES: "0" },
    });
    expect(await run.exited).toBe(2);
    expect(run.output()).toContain('start: API_PROCESSES must be a whole number from 1 to 64, got "0"');
    expect(run.output()).not.toContain("resonate server");
  });

  const pushRefusals: [Record<string, string>, string][] = [
    [{ RESONATE_PUSH: "yes" }, 'start: RESONATE_PUSH must be 1/true or 0/false, got "yes"'],
    [
      { RESONATE_PUSH: "1", RESONATE_URL: "http://127.0.0.1:9" },
      "start: RESONATE_PUSH=1 needs a server npm start starts",
    ],
    [
      { RESONATE_PUSH_HOST: "127.0.0.1", RESONATE_PUSH_TOKEN: "0123456789abcdef" },
      "start: RESONATE_PUSH_HOST with a server npm start starts: set RESONATE_PUSH=1 instead",
    ],
  ];
  for (const [extra, message] of pushRefusals) {
    test(`refuses ${JSON.stringify(extra)} with exit 2 and a message that says what to set, before it starts anything`, async () => {
      using dataDir = tempDir("start-test-");
      await using run = spawnProcess({
        name: "start",
        cmd: [process.execPath, START],
        env: { ...launcherEnv(dataDir.path, {}), ...extra },
      });
      expect(await run.exited).toBe(2);
      expect(run.output()).toContain(message);
      expect(run.output()).not.toContain("resonate server");
    });
  }

  test("refuses an API_RUNTIME it does not know with exit 2 and a message that names it, before it starts anything", async () => {
    using dataDir = tempDir("start-test-");
    await using run = spawnProcess({
      name: "start",
      cmd: [process.execPath, START],
      // Free ports all the same, so a launcher that went on would clash with nothing.
      env: {
        DATA_DIR: dataDir.path,
        API_RUNTIME: "node",
        PORT: String(freePort()),
        RESONATE_PORT: String(freePort()),
        SANDBOX_PORT: String(freePort()),
      },
    });
    expect(await run.exited).toBe(2);
    expect(run.output()).toContain('start: API_RUNTIME must be one of bun, deno, got "node"');
    expect(run.output()).not.toContain("resonate server");
  });

  test(
    "with API_RUNTIME=deno (what npm run start:deno sets) the API runs on Deno, the launcher says so, and SIGTERM stops it",
    async () => {
      using dataDir = tempDir("start-test-");
      // No worker processes: what this test is about is the API's runtime, two processes of it on one port.
      const env = launcherEnv(dataDir.path, { MODE: "colocated", API_RUNTIME: "deno", API_PROCESSES: "2" });
      const api = { url: `http://127.0.0.1:${env.PORT}` };
      await using start = spawnProcess({
        name: "start",
        cmd: [process.execPath, START],
        env,
        readyLine: /^ready: API /,
        readyTimeoutMs: 30_000,
      });
      await start.ready;
      expect(start.output()).toContain(`\nready: API ${api.url} (2 processes) on deno `);
      const apiPids = [...start.output().matchAll(/^start: API on deno, pid (\d+)$/gm)].map((m) =>
        Number(m[1]),
      );
      expect(apiPids).toHaveLength(2);
      for (const apiPid of apiPids)
        expect(readFileSync(`/proc/${apiPid}/cmdline`, "utf8").split("\0")).toContain(
          resolve(import.meta.dir, "../../src/main.deno.ts"),
        );
      // The API on Deno checks the development token as the one on Bun does.
      const token = readFileSync(join(dataDir.path, "api-token"), "utf8").trim();
      expect(
        await call(
          api,
          "POST",
          "/price-quote",
          { sku: "sku-1", qty: 1 },
          { authorization: `Bearer ${token}` },
        ),
      ).toMatchObject({ status: 200 });
      expect(
        (await call(api, "POST", "/price-quote", { sku: "sku-1", qty: 1 }, { authorization: "Bearer x.y.z" }))
          .status,
      ).toBe(401);
      expect(await start.stop()).toBe(0);
      for (const apiPid of apiPids) expect(alive(apiPid)).toBe(false);
    },
    E2E_TIMEOUT,
  );
});
