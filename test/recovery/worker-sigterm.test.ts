/**
 * A worker stopped as an orchestrator stops it (SIGTERM): it takes no new
 * task, lets the step it runs finish within SHUTDOWN_GRACE_MS, and hands
 * back (task.release) what it still holds when the grace is nearly over,
 * so another worker takes it at once rather than after the lease; then it
 * exits 0.
 */
import { describe, expect, test } from "bun:test";
import { getPromise, getTask, spawnWorker, startSystem, waitFor } from "../../harness/index.ts";
import { E2E_TIMEOUT, runId } from "../support/processes.ts";

/** The worker's `stopped` log line, parsed. */
function stoppedLine(output: string): { held_at_start: number; released: { id: string; answer: string }[] } {
  const line = output.split("\n").find((l) => l.includes('"msg":"stopped"'));
  if (!line) throw new Error(`no stopped line in:\n${output.slice(-2000)}`);
  return JSON.parse(line);
}

/** Starts a quote that waits for nobody (202 at once); its id. */
async function startQuote(apiUrl: string): Promise<string> {
  const res = await fetch(`${apiUrl}/price-quote`, {
    method: "POST",
    headers: { "content-type": "application/json", prefer: "wait=0.3" },
    body: JSON.stringify({ sku: "sku-7", qty: 5, customer_id: runId() }),
  });
  expect(res.status).toBe(202);
  return ((await res.json()) as { quote_id: string }).quote_id;
}

describe("a worker on SIGTERM", () => {
  test(
    "hands a step it cannot finish in the grace to another worker at once, long before its 30 s lease would run out",
    async () => {
      await using system = await startSystem({
        workers: { "pricing-workers": 1, db: 1 },
        apiAuth: false,
        sandbox: false,
        env: {
          RESONATE_TTL_MS: "30000",
          QUOTE_TIMEOUT_MS: "120000",
          SHUTDOWN_GRACE_MS: "1000",
          PRICING_DELAY_MS: "60000",
        },
      });
      const slow = system.workers.live().find((w) => w.name.startsWith("pricing-workers"));
      if (!slow) throw new Error("no pricing worker");
      const id = await startQuote(system.apiUrl);
      await waitFor(async () => (await getTask(system.resonateUrl, id))?.state === "acquired" || undefined, {
        message: "the slow worker runs the quote",
      });
      await using other = (await spawnWorker({ group: "pricing-workers", env: { ...system.env } }))[0];
      const signaled = Date.now();
      slow.kill("SIGTERM");
      expect(await slow.exited).toBe(0);
      expect(Date.now() - signaled).toBeLessThan(5_000);
      expect(stoppedLine(slow.output())).toMatchObject({
        held_at_start: 1,
        released: [{ id, answer: "200" }],
      });
      // The stopped worker is gone, so whoever holds the quote now is the other one, running its delay step again.
      await waitFor(
        async () => {
          const task = await getTask(system.resonateUrl, id);
          return task?.state === "acquired" || undefined;
        },
        { message: "the quote taken by the other worker", timeout: 15_000 },
      );
      expect(Date.now() - signaled).toBeLessThan(5_000);
      expect((await getPromise(system.resonateUrl, `${id}.0`))?.state).toBe("pending");
      void other;
    },
    E2E_TIMEOUT,
  );

  test(
    "lets the step it runs finish within the grace, takes nothing new, and exits 0",
    async () => {
      await using system = await startSystem({
        workers: { "pricing-workers": 1, db: 1 },
        apiAuth: false,
        sandbox: false,
        env: { RESONATE_TTL_MS: "30000", SHUTDOWN_GRACE_MS: "20000", PRICING_DELAY_MS: "1500" },
      });
      const worker = system.workers.live().find((w) => w.name.startsWith("pricing-workers"));
      if (!worker) throw new Error("no pricing worker");
      const id = await startQuote(system.apiUrl);
      await waitFor(async () => (await getTask(system.resonateUrl, id))?.state === "acquired" || undefined, {
        message: "the worker runs the quote",
      });
      worker.kill("SIGTERM");
      await waitFor(() => worker.output().includes("stopping: taking no new task") || undefined, {
        message: "the worker stops taking tasks",
      });
      // Started after it stopped taking tasks: waits for a worker that takes it.
      const later = await startQuote(system.apiUrl);
      expect(await worker.exited).toBe(0);
      expect(stoppedLine(worker.output())).toMatchObject({ held_at_start: 1, released: [] });
      // The delay step finished here; the quote then waits for the price from the db group, elsewhere.
      expect((await getPromise(system.resonateUrl, `${id}.0`))?.state).toBe("resolved");
      expect((await getTask(system.resonateUrl, id))?.state).not.toBe("acquired");
      expect((await getTask(system.resonateUrl, later))?.state).not.toBe("acquired");
      expect((await getPromise(system.resonateUrl, later))?.state).toBe("pending");
    },
    E2E_TIMEOUT,
  );
});
