import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { freePort, sendWebhook, spawnProcess, waitFor } from "../../harness/index.ts";
import { call } from "../support/http.ts";
import { E2E_TIMEOUT } from "../support/processes.ts";
import { TEST_SECRET } from "../support/secrets.ts";
import { tempDir } from "../support/temp.ts";

const START = resolve(import.meta.dir, "../../harness/start.ts");

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

describe("npm start (harness/start.ts)", () => {
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
      // No worker processes: what this test is about is the API's runtime.
      const env = launcherEnv(dataDir.path, { MODE: "colocated", API_RUNTIME: "deno" });
      const api = { url: `http://127.0.0.1:${env.PORT}` };
      await using start = spawnProcess({
        name: "start",
        cmd: [process.execPath, START],
        env,
        readyLine: /^ready: API /,
        readyTimeoutMs: 30_000,
      });
      await start.ready;
      expect(start.output()).toContain(`\nready: API ${api.url} on deno `);
      const apiPid = Number(/^start: API on deno, pid (\d+)$/m.exec(start.output())?.[1]);
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
      expect(alive(apiPid)).toBe(false);
    },
    E2E_TIMEOUT,
  );
});
