/**
 * The replay guard (`npm run test:replay`, and part of `npm test`): every
 * recorded history in `histories/` (one finished run of each path through
 * each workflow at each version, `npm run replay:record`) replays against
 * the code registered for its version, step for step, to the recorded
 * result. A change to a workflow's steps made without a new version fails
 * here, naming the workflow, the version and the first step that differs.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Db, Orders, Pricing } from "../../core/functions.ts";
import type { History } from "../../harness/replay/history.ts";
import {
  divergenceMessage,
  historyCode,
  registeredFunctions,
  replay,
  substituted,
  workerCode,
} from "../../harness/replay/replay.ts";

const DIR = join(import.meta.dir, "histories");
const PROCESS_ORDER = Orders.processOrder.name;
const APPROVE = Orders.approveThenShip.name;
const QUOTE = Pricing.computeQuote.name;
const histories = readdirSync(DIR)
  .filter((file) => file.endsWith(".json"))
  .sort()
  .map((file) => ({ file, history: JSON.parse(readFileSync(join(DIR, file), "utf8")) as History }));
const named = (file: string) => {
  const found = histories.find((h) => h.file === file);
  if (!found) throw new Error(`no recorded history ${file}`);
  return found.history;
};

describe("recorded histories replay against the code of their version", () => {
  test("there is a history of every path recorded: orders paid, declined and canceled either side of the charge; approvals approved, rejected and canceled; checkouts with and without the discount; quotes priced from the list, asking the db group, and with a delay step", () => {
    expect(histories.map((h) => h.file)).toEqual([
      "approve_then_ship-v2-approved.json",
      "approve_then_ship-v2-canceled.json",
      "approve_then_ship-v2-rejected.json",
      "compute_quote-v2-delayed.json",
      "compute_quote-v2-listed.json",
      "compute_quote-v2-unknown-sku.json",
      "place_order-v1-discount.json",
      "place_order-v1-first.json",
      "process_order-v1-canceled-after-charge.json",
      "process_order-v1-canceled-before-charge.json",
      "process_order-v1-declined.json",
      "process_order-v1-paid.json",
    ]);
  });

  for (const { file, history } of histories) {
    test(`${file}: ${history.workflow} v${history.version}, ${history.branch}, ${history.steps.length} steps`, async () => {
      const divergence = await replay(history, historyCode(history));
      expect(divergence && divergenceMessage(history, divergence)).toBeUndefined();
    });
  }
});

describe("the guard catches a change to a workflow's steps made without a new version", () => {
  test("a step added to process_order: the paid order's history parts at the step after it", async () => {
    const history = named("process_order-v1-paid.json");
    const current = registeredFunctions(workerCode(PROCESS_ORDER)).get(`${PROCESS_ORDER}@1`) as (
      ...args: unknown[]
    ) => Generator;
    const withStep = function* (ctx: { run(fn: () => null): Generator }, ...args: unknown[]) {
      yield* ctx.run(() => null);
      return yield* current(ctx, ...args);
    };
    const divergence = await replay(
      history,
      substituted(workerCode(PROCESS_ORDER), `${PROCESS_ORDER}@1`, withStep as never),
    );
    expect(divergence).toEqual({
      at: `${history.root.id}.1`,
      recorded: expect.stringMatching(/^an rpc of reserve_stock v1\(/),
      code: "a ctx.run step",
    });
    expect(divergenceMessage(history, divergence as NonNullable<typeof divergence>)).toStartWith(
      `process_order v1 (paid) no longer replays its recorded run: at ${history.root.id}.1 the history has an rpc of reserve_stock v1(`,
    );
  });

  test("approve_then_ship taking its pause only when one is set (version 1's code under version 2): the approved history parts at the pause", async () => {
    const history = named("approve_then_ship-v2-approved.json");
    const v1 = registeredFunctions(workerCode(APPROVE)).get(`${APPROVE}@1`);
    const register = substituted(workerCode(APPROVE), `${APPROVE}@2`, v1 as never);
    expect(await replay(history, register)).toEqual({
      at: `${history.root.id}.2`,
      recorded: "a ctx.sleep",
      code: "a ctx.run step",
    });
  });

  test("compute_quote taking its delay from its worker's setting (version 1's code under version 2, on a worker without one): the delayed quote's history parts at the delay", async () => {
    const history = named("compute_quote-v2-delayed.json");
    const v1 = registeredFunctions(historyCode(history)).get(`${QUOTE}@1`);
    expect(await replay(history, substituted(historyCode(history), `${QUOTE}@2`, v1 as never))).toEqual({
      at: `${history.root.id}.0`,
      recorded: "a ctx.run step (pricingDelay)",
      code: "nothing (the run ended before)",
    });
  });

  test("the undo's release and refund swapped: the history canceled after the charge parts where it released the stock", async () => {
    const history = named("process_order-v1-canceled-after-charge.json");
    const release = history.steps.findIndex(
      (s) => s.shape.kind === "rpc" && s.shape.func === Db.releaseStock.name,
    );
    // The code after the swap, as the history would show it: the refund step where the release was.
    const swapped: History = {
      ...history,
      steps: history.steps.map((step, i) =>
        i === release ? { ...step, shape: { kind: "step", func: "" } } : step,
      ),
    };
    const divergence = await replay(swapped, workerCode(PROCESS_ORDER));
    expect(divergence?.at).toBe(history.steps[release]?.id);
    expect(divergence?.recorded).toBe("a ctx.run step");
    expect(divergence?.code).toMatch(/^an rpc of release_stock v1\(/);
  });
});
