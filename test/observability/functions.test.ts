/**
 * The runs and steps of durable functions registered through `register`,
 * on the SDK's in-process network: what the wrapper counts and logs, and
 * that without an observer a function runs as it was registered.
 */
import { describe, expect, test } from "bun:test";
import { propagation } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { Constant, type Context, Resonate } from "@resonatehq/sdk";
import { observeFunctions } from "../../core/observability/functions.ts";
import { createLogger } from "../../core/observability/logger.ts";
import { WorkerMetrics } from "../../core/observability/metrics.ts";
import { durableFunction, register } from "../../core/resonate/contract.ts";
import { parseScrape, total } from "../../harness/load/prometheus.ts";

const flakyLeaf = durableFunction<[n: number], number>("obs_flaky_leaf");
const workflow = durableFunction<[n: number], number>("obs_workflow");
const failing = durableFunction<[], never>("obs_failing");

/** Log lines written to memory, parsed. */
function captured() {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({
    level: "info",
    base: { service: "test" },
    destination: { write: (line: string) => lines.push(JSON.parse(line)) },
  });
  return { lines, log };
}

/** A client with the three functions registered, and what they log and count when `observe` says so. */
function client(observe: boolean) {
  const resonate = new Resonate({ group: "obs", pid: `obs-${crypto.randomUUID()}` });
  const metrics = new WorkerMetrics();
  const { lines, log } = captured();
  if (observe) observeFunctions(resonate, { metrics: metrics.functions, log });
  const failedOnce = new Set<string>();
  register(resonate, flakyLeaf, (ctx: Context, n: number) => {
    if (!failedOnce.has(ctx.id)) {
      failedOnce.add(ctx.id);
      throw new Error("first attempt fails");
    }
    return n * 2;
  });
  register(resonate, workflow, function* (ctx: Context, n: number) {
    const fast = ctx.options({ retryPolicy: new Constant({ delay: 5, maxRetries: 3 }) });
    let tries = 0;
    const once = yield* ctx.run(() => {
      if (tries++ === 0) throw new Error("the step fails once");
      return n + 1;
    }, fast);
    const twice = yield* ctx.run(async () => once * 2);
    return twice;
  });
  register(resonate, failing, function* (ctx: Context) {
    yield* ctx.run(() => 1);
    throw new Error("the workflow gives up");
  });
  const fast = resonate.options({ retryPolicy: new Constant({ delay: 5, maxRetries: 3 }) });
  return { resonate, metrics, lines, fast, [Symbol.asyncDispose]: () => resonate.stop() };
}

describe("durable functions registered through register", () => {
  test("a leaf's attempts count as steps, its retry as a retry, and each run is logged with its attempt", async () => {
    await using c = client(true);
    expect(await c.resonate.run("leaf-1", flakyLeaf.name, 21, c.fast)).toBe(42);
    const s = parseScrape(await c.metrics.registry.metrics());
    const fn = { function: flakyLeaf.name };
    expect(total(s, "durable_function_starts_total", { ...fn, run: "first" })).toBe(1);
    expect(total(s, "durable_function_starts_total", { ...fn, run: "retry" })).toBe(1);
    expect(total(s, "durable_function_ends_total", { ...fn, outcome: "rejected" })).toBe(1);
    expect(total(s, "durable_function_ends_total", { ...fn, outcome: "resolved" })).toBe(1);
    expect(total(s, "durable_steps_total", fn)).toBe(2);
    expect(total(s, "durable_step_retries_total", fn)).toBe(1);
    expect(c.lines.map(({ msg, attempt, outcome }) => ({ msg, attempt, outcome }))).toEqual([
      { msg: "function start", attempt: 1, outcome: undefined },
      { msg: "function end", attempt: 1, outcome: "rejected" },
      { msg: "function start", attempt: 2, outcome: undefined },
      { msg: "function end", attempt: 2, outcome: "resolved" },
    ]);
    expect(c.lines[1]).toMatchObject({ id: "leaf-1", workflow_id: "leaf-1", error: "first attempt fails" });
  });

  test("a workflow stays a generator; its ctx.run steps are counted, a retried step as a retry", async () => {
    await using c = client(true);
    expect(await c.resonate.run("wf-1", workflow.name, 1)).toBe(4);
    const s = parseScrape(await c.metrics.registry.metrics());
    const fn = { function: workflow.name };
    expect(total(s, "durable_steps_total", fn)).toBe(3);
    expect(total(s, "durable_step_retries_total", fn)).toBe(1);
    expect(total(s, "durable_function_ends_total", { ...fn, outcome: "resolved" })).toBe(1);
    const [start, end] = c.lines;
    expect(start).toEqual({
      level: "info",
      time: expect.any(String),
      service: "test",
      function: workflow.name,
      id: "wf-1",
      workflow_id: "wf-1",
      run: 1,
      msg: "function start",
    });
    expect(end).toMatchObject({ msg: "function end", id: "wf-1", outcome: "resolved", run: 1 });
    expect(end?.duration_ms).toBeNumber();
  });

  test("a workflow that throws ends rejected, with the error on its line", async () => {
    await using c = client(true);
    await expect(c.resonate.run("wf-2", failing.name)).rejects.toThrow("the workflow gives up");
    const s = parseScrape(await c.metrics.registry.metrics());
    expect(total(s, "durable_function_ends_total", { function: failing.name, outcome: "rejected" })).toBe(1);
    expect(c.lines.at(-1)).toMatchObject({
      msg: "function end",
      outcome: "rejected",
      error: "the workflow gives up",
    });
  });

  test("without an observer the same functions run, and nothing is counted or logged", async () => {
    await using c = client(false);
    expect(await c.resonate.run("leaf-2", flakyLeaf.name, 5, c.fast)).toBe(10);
    expect(await c.resonate.run("wf-3", workflow.name, 2)).toBe(6);
    const s = parseScrape(await c.metrics.registry.metrics());
    expect(total(s, "durable_steps_total")).toBe(0);
    expect(c.lines).toEqual([]);
  });
});

describe("with tracing on, a workflow's steps", () => {
  test("carry their run's traceparent as a tag, beside the options and tags a step was given", async () => {
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    const traceparent = `00-${"a".repeat(32)}-${"b".repeat(16)}-01`;
    const resonate = new Resonate({ group: "obs", pid: `obs-${crypto.randomUUID()}` });
    const { log } = captured();
    observeFunctions(resonate, {
      metrics: new WorkerMetrics().functions,
      log,
      traces: {
        traceOf: () => ({ traceparent }),
        takenAt: () => 1,
        onBlocked: () => {},
        onTracedPromise: () => {},
      },
    });
    let tries = 0;
    register(resonate, workflow, function* (ctx: Context, n: number) {
      const given = ctx.options({
        tags: { mine: "kept" },
        retryPolicy: new Constant({ delay: 5, maxRetries: 3 }),
      });
      const once = yield* ctx.run(() => {
        if (tries++ === 0) throw new Error("the step fails once");
        return n + 1;
      }, given);
      return yield* ctx.run(async () => once * 2);
    });
    try {
      expect(await resonate.run("traced-1", workflow.name, 1)).toBe(4);
      // The given retry policy held (a second try, 5 ms later), and the given tag is there with the run's.
      expect(tries).toBe(2);
      const [given, plain] = await Promise.all([
        resonate.promises.get("traced-1.0"),
        resonate.promises.get("traced-1.1"),
      ]);
      expect(given.tags).toMatchObject({ mine: "kept", traceparent });
      expect(plain.tags).toMatchObject({ traceparent });
    } finally {
      propagation.disable();
      await resonate.stop();
    }
  });
});
