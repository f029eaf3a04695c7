/**
 * One trace per order while workers are SIGKILLed inside its steps: orders
 * sent with a `traceparent` to a stack whose every process exports its
 * spans, an order worker killed right after a charge (before its step
 * ends) and a db worker killed inside `reserve_stock`; then orders after
 * the kills. A kill loses the spans its process had not sent yet, never
 * adds one, so: every span of a finished order is in that order's trace,
 * no step or RPC has two successful spans, a step begun by a killed run
 * shows as a retry when it runs again, and an order after the kills has
 * exactly one span for each of its steps and RPCs.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Db } from "../../core/functions.ts";
import { crashAt } from "../../harness/chaos/crash-points.ts";
import { NOTHING_BROKEN } from "../../harness/chaos/invariants.ts";
import { readProbes } from "../../harness/chaos/probe-log.ts";
import { type ChaosStack, startChaosStack } from "../../harness/chaos/stack.ts";
import { decodeValue, getPromise, waitFor } from "../../harness/index.ts";
import { TEST_API_AUTH } from "../support/api-auth.ts";
import { call, jobDone } from "../support/http.ts";
import { attribute, exportingTo, type OtlpSpan, spansOf, startReceiver } from "../support/otlp.ts";
import { E2E_TIMEOUT, runId } from "../support/processes.ts";

const run = runId();
/** An order whose worker is killed after the provider took its charge, before the step ended. */
const KILLED_CHARGE = `order:trk-charge-${run}`;
/** An order whose db worker is killed inside `reserve_stock`, after the stock was taken. */
const KILLED_RESERVE = `order:trk-reserve-${run}`;
/** Orders sent once both kills are over. */
const AFTER = Array.from({ length: 3 }, (_, i) => `order:trk-after-${i}-${run}`);

const receiver = startReceiver();
let stack: ChaosStack;
/** Each order's trace id, as its `POST /jobs` named it. */
const traceOf = new Map<string, string>();

/** Sends order `jobId` in a trace of its own and waits until it is done. */
async function order(jobId: string): Promise<void> {
  const traceId = crypto.randomUUID().replaceAll("-", "");
  traceOf.set(jobId, traceId);
  const res = await call(
    stack.api,
    "POST",
    "/jobs",
    { order_id: jobId.slice("order:".length), items: [{ sku: "sku-3", qty: 1 }] },
    { traceparent: `00-${traceId}-${traceId.slice(16)}-01` },
  );
  expect(res.status).toBe(202);
  await jobDone(stack.api, jobId, 60_000);
}

type Span = OtlpSpan & { service: string };
const ERROR = 2;
const succeeded = (s: Span) => s.status?.code !== ERROR;
const isStepOrRpc = (s: Span) => s.name === "step" || s.name.startsWith("step ") || s.name.startsWith("rpc ");

/** The spans that name `jobId` as their workflow, or a promise of it, from every trace. */
const spansOfOrder = (jobId: string) =>
  spansOf(receiver.requests).filter(
    (s) =>
      attribute(s, "resonate.workflow_id") === jobId ||
      (attribute(s, "resonate.promise_id") ?? "").startsWith(`${jobId}.`),
  );

/** Each of `jobId`'s step and RPC promises: its id, and whether it is an RPC (remote) or a step. */
async function childrenOf(jobId: string): Promise<{ id: string; rpc: boolean }[]> {
  const children: { id: string; rpc: boolean }[] = [];
  for (let i = 0; ; i++) {
    const child = await getPromise(stack.server.url, `${jobId}.${i}`);
    if (!child) return children;
    const tags = child.tags ?? {};
    if (tags["resonate:target"]) children.push({ id: child.id, rpc: true });
    else if (tags["resonate:scope"] === "local") {
      // `ctx.date.now()` is a local promise too, but no step of the workflow's.
      const func = (decodeValue(child.param) as { func?: string } | undefined)?.func;
      if (func !== "now") children.push({ id: child.id, rpc: false });
    }
  }
}

beforeAll(async () => {
  stack = await startChaosStack({
    groups: { "order-workers": 2, "pricing-workers": 1, db: 2, business: 1 },
    apiAuth: TEST_API_AUTH,
    crashAt: crashAt([
      { point: "order.charge.after", id: KILLED_CHARGE },
      { point: "db.reserve_stock.after", id: KILLED_RESERVE },
    ]),
    env: exportingTo(receiver.url, "http/json"),
  });
  await Promise.all([order(KILLED_CHARGE), order(KILLED_RESERVE)]);
  for (const jobId of AFTER) await order(jobId);
}, 120_000);

afterAll(async () => {
  const report = await stack?.report([KILLED_CHARGE, KILLED_RESERVE, ...AFTER]);
  await stack?.stop();
  receiver.stop();
  expect(report).toMatchObject(NOTHING_BROKEN);
}, E2E_TIMEOUT);

describe("traces while workers are killed inside an order's steps", () => {
  test(
    "both kills happened, and every span of each finished order is in the trace its POST /jobs named: one trace per order",
    async () => {
      const crashes = readProbes(stack.probeLog).filter((p) => p.point === "crash");
      expect(crashes.map((c) => c.at).sort()).toEqual(["db.reserve_stock.after", "order.charge.after"]);
      for (const jobId of [KILLED_CHARGE, KILLED_RESERVE, ...AFTER]) {
        const spans = await waitFor(
          () => {
            const all = spansOfOrder(jobId);
            return all.some((s) => s.name.startsWith("run ") && s.service === "db") ? all : undefined;
          },
          { timeout: 15_000, message: `the spans of ${jobId}` },
        );
        expect({ jobId, traces: [...new Set(spans.map((s) => s.traceId))] }).toEqual({
          jobId,
          traces: [traceOf.get(jobId) ?? ""],
        });
      }
    },
    E2E_TIMEOUT,
  );

  test(
    "no step or RPC has two successful spans; the charge step that a killed run began shows once, as a retry linked to that run, and the db run that finished the killed reserve_stock is a retry",
    async () => {
      for (const jobId of [KILLED_CHARGE, KILLED_RESERVE, ...AFTER]) {
        const byPromise = Map.groupBy(spansOfOrder(jobId).filter(isStepOrRpc).filter(succeeded), (s) =>
          attribute(s, "resonate.promise_id"),
        );
        const twice = [...byPromise].filter(([, spans]) => spans.length > 1).map(([id]) => id);
        expect({ jobId, twice }).toEqual({ jobId, twice: [] });
      }
      const charge = await waitFor(
        () => spansOfOrder(KILLED_CHARGE).find((s) => s.name === "step" && attribute(s, "resonate.rerun")),
        { timeout: 15_000, message: "the charge step's span after the kill" },
      );
      expect(attribute(charge, "resonate.retry")).toBe("true");
      expect(succeeded(charge)).toBe(true);
      // The link names the killed run's span: in the order's trace, and not the run this retry is in.
      expect(charge.links?.length).toBe(1);
      expect(charge.links?.[0]?.traceId).toBe(traceOf.get(KILLED_CHARGE) ?? "");
      expect(charge.links?.[0]?.spanId).not.toBe(charge.parentSpanId);
      // The db worker killed inside reserve_stock: the run that finished it, on another worker, is a retry.
      const reserve = await waitFor(
        () =>
          spansOfOrder(KILLED_RESERVE).find(
            (s) => s.name === `run ${Db.reserveStock.name}` && attribute(s, "resonate.rerun") === "true",
          ),
        { timeout: 15_000, message: `${Db.reserveStock.name}'s run after the kill` },
      );
      expect(attribute(reserve, "resonate.retry")).toBe("true");
      expect(succeeded(reserve)).toBe(true);
    },
    E2E_TIMEOUT,
  );

  test(
    "an order after the kills has exactly one span for each of its steps and RPCs, and no span of it is a rerun",
    async () => {
      for (const jobId of AFTER) {
        const children = await childrenOf(jobId);
        expect(children.filter((c) => c.rpc).length).toBeGreaterThan(0);
        const spans = await waitFor(
          () => {
            const found = spansOfOrder(jobId).filter(isStepOrRpc);
            return children.every((c) => found.some((s) => attribute(s, "resonate.promise_id") === c.id))
              ? found
              : undefined;
          },
          { timeout: 15_000, message: `a span for each step and RPC of ${jobId}` },
        );
        for (const child of children) {
          const mine = spans.filter((s) => attribute(s, "resonate.promise_id") === child.id);
          expect({ child, spans: mine.length, rpc: mine[0]?.name.startsWith("rpc ") }).toEqual({
            child,
            spans: 1,
            rpc: child.rpc,
          });
        }
        expect(spansOfOrder(jobId).filter((s) => attribute(s, "resonate.rerun") !== undefined)).toEqual([]);
      }
    },
    E2E_TIMEOUT,
  );
});
