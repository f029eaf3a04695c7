/**
 * Retiring a workflow version is a deliberate step: `npm run versions`
 * counts the pending jobs of each `<function>@<version>` through
 * `promise.search`, and `--retire <function>@<version>` says whether any
 * is left (exit 1, naming them) or the version may go (exit 0).
 */
import { describe, expect, test } from "bun:test";
import { resolve } from "node:path";
import { Resonate } from "@resonatehq/sdk";
import { Earlier, Orders } from "../../core/functions.ts";
import { getPromise, spawnProcess, startSystem, waitFor } from "../../harness/index.ts";
import { E2E_TIMEOUT, runId } from "../support/processes.ts";

const VERSIONS = resolve(import.meta.dir, "../../harness/versions/main.ts");
const APPROVE = Orders.approveThenShip.name;

/** Runs `npm run versions` against `url` with `args`; its exit code and output. */
async function versions(url: string, ...args: string[]) {
  await using run = spawnProcess({
    name: "versions",
    cmd: [process.execPath, VERSIONS, "--url", url, ...args],
  });
  const code = await run.exited;
  return { code, output: run.output() };
}

describe("npm run versions: which versions jobs still run at, and whether one may be retired", () => {
  test(
    "an approval of version 1 still waiting keeps version 1; once it ends, version 1 may be retired",
    async () => {
      await using system = await startSystem({ workers: { "order-workers": 1, db: 1 }, apiAuth: false });
      const run = runId();
      const current = `cur-${run}`;
      expect(
        (await fetch(`${system.apiUrl}/orders/${current}/approve-and-ship`, { method: "POST" })).status,
      ).toBe(202);
      // A job of version 1, as the API started them before version 2 was deployed.
      const old = `old-${run}`;
      const client = new Resonate({
        url: system.resonateUrl,
        group: "versions-test",
        pid: `versions-${run}`,
      });
      try {
        await client.beginRpc(
          `ship:${old}`,
          Earlier.approveThenShipV1.name,
          old,
          client.options({
            target: "order-workers",
            version: Earlier.approveThenShipV1.version,
            timeout: 60_000,
            tags: { job: "true", "job:kind": "approval", "job:owner": "tester" },
          }),
        );
      } finally {
        await client.stop();
      }
      const census = await versions(system.resonateUrl);
      expect(census.code).toBe(0);
      expect(census.output).toContain(`versions: approve_then_ship@1: 1 pending (ship:${old})`);
      expect(census.output).toContain(
        `versions: approve_then_ship@${Orders.approveThenShip.version}: 1 pending (ship:${current})`,
      );

      const kept = await versions(system.resonateUrl, "--retire", `${APPROVE}@1`);
      expect(kept.code).toBe(1);
      expect(kept.output).toContain(
        `versions: 1 job(s) of approve_then_ship@1 still pending, keep it registered: ship:${old}`,
      );

      // The version-1 job ends (canceled through the API, as any job may be).
      const cancel = await fetch(`${system.apiUrl}/jobs/ship:${old}/cancel`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ reason: "retiring v1" }),
      });
      expect([200, 202]).toContain(cancel.status);
      await waitFor(
        async () => (await getPromise(system.resonateUrl, `ship:${old}`))?.state === "resolved" || undefined,
        {
          message: "the version-1 job ended",
        },
      );
      const retired = await versions(system.resonateUrl, "--retire", `${APPROVE}@1`);
      expect(retired).toEqual({
        code: 0,
        output: "versions: no job of approve_then_ship@1 is pending: it may be retired\n",
      });
    },
    E2E_TIMEOUT,
  );

  test("a malformed --retire exits 2 and says what it takes", async () => {
    const bad = await versions("http://127.0.0.1:9", "--retire", APPROVE);
    expect(bad.code).toBe(2);
    expect(bad.output).toContain(
      `versions: --retire takes <function>@<version>, e.g. approve_then_ship@1, got "${APPROVE}"`,
    );
  });

  test("a server that does not answer exits 2 and names it", async () => {
    const down = await versions("http://127.0.0.1:9");
    expect(down.code).toBe(2);
    expect(down.output).toContain("versions: cannot search the Resonate server at http://127.0.0.1:9:");
  });
});
