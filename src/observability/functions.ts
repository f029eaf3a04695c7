/**
 * Durable functions as the process that runs them sees them: a log line and
 * a count when a function's body starts and when it ends, and a count for
 * each attempt of its steps. `register` (src/resonate/contract.ts) wraps
 * every implementation with `observed`; the wrapper finds what to log and
 * count on the client it runs on (`observeFunctions`), so a client without
 * an observer runs its functions exactly as registered.
 */
import type { Context, Resonate } from "@resonatehq/sdk";
import { BoundedMap } from "../bounded-map.ts";
import type { Implementation } from "../resonate/contract.ts";
import type { Logger } from "./logger.ts";
import type { FunctionMetrics, RunKind, RunOutcome } from "./metrics.ts";

/** Where the wrapper finds the observer: a dependency of the Resonate client (`ctx.getDependency`). */
const DEPENDENCY = "observability:functions";

/** Workflow ids whose runs this process remembers, to tell a first run from a replay. */
const REMEMBERED_RUNS = 10_000;

interface FunctionObserver {
  metrics: FunctionMetrics;
  log: Logger;
  /** Runs of each workflow id in this process so far. */
  runs: BoundedMap<string, number>;
}

/** Logs and counts the runs of every function registered through `register` on `resonate`. */
export function observeFunctions(resonate: Resonate, opts: { metrics: FunctionMetrics; log: Logger }): void {
  const observer: FunctionObserver = { ...opts, runs: new BoundedMap(REMEMBERED_RUNS) };
  resonate.setDependency(DEPENDENCY, observer);
}

const GeneratorFunction = Object.getPrototypeOf(function* () {}).constructor;
const AsyncGeneratorFunction = Object.getPrototypeOf(async function* () {}).constructor;
const isGeneratorFunction = (f: unknown) =>
  f instanceof GeneratorFunction || f instanceof AsyncGeneratorFunction;

/** `wrapper`, named as `original` (the SDK names a function's runs and steps by it). */
function namedAs<F extends object>(wrapper: F, original: { name: string }): F {
  Object.defineProperty(wrapper, "name", { value: original.name });
  return wrapper;
}

const errorText = (error: unknown) => (error instanceof Error ? error.message : String(error));

/**
 * Counts and logs one run of `name`'s body; the returned function ends it.
 * `count` is the run's number: a leaf's attempt, or how many times this
 * process has run this workflow (it replays from the start each time it
 * resumes after waiting).
 */
function startRun(
  observer: FunctionObserver,
  name: string,
  ctx: Context,
  count: { attempt: number } | { run: number },
): (outcome: RunOutcome, error?: unknown) => void {
  const startedAt = performance.now();
  const fields = { function: name, id: ctx.id, workflow_id: ctx.originId, ...count };
  const run: RunKind =
    "attempt" in count ? (count.attempt > 1 ? "retry" : "first") : count.run > 1 ? "replay" : "first";
  observer.metrics.starts.inc({ function: name, run });
  observer.log.info(fields, "function start");
  return (outcome, error) => {
    const ms = performance.now() - startedAt;
    observer.metrics.ends.inc({ function: name, outcome });
    observer.metrics.runSeconds.observe({ function: name, outcome }, ms / 1000);
    observer.log.info(
      {
        ...fields,
        outcome,
        duration_ms: Math.round(ms * 1000) / 1000,
        error: outcome === "rejected" ? errorText(error) : undefined,
      },
      "function end",
    );
  };
}

/** Counts an attempt of a step of `name`; attempts after the first are retries. */
function countAttempt(metrics: FunctionMetrics, name: string, attempt: number): void {
  metrics.steps.inc({ function: name });
  if (attempt > 1) metrics.stepRetries.inc({ function: name });
}

type Step = (ctx: Context, ...args: unknown[]) => unknown;

/**
 * Counts the attempts of the `ctx.run` steps of this run. The SDK calls a
 * step with a context of its own whose `info.attempt` says which attempt it
 * is; the step keeps its name, which the SDK records in the step's promise.
 * A step that is a generator (a local sub-workflow) is left as it is.
 */
function countSteps(ctx: Context, name: string, metrics: FunctionMetrics): void {
  const run = ctx.run;
  const counted = (func: unknown, ...args: unknown[]) => {
    if (typeof func !== "function" || isGeneratorFunction(func)) return run(func as string, ...args);
    const step: Step = (stepCtx, ...stepArgs) => {
      countAttempt(metrics, name, stepCtx.info.attempt);
      return (func as Step)(stepCtx, ...stepArgs);
    };
    return run(namedAs(step, func), ...args);
  };
  // The context is this run's own (the SDK builds one per run), so nothing else sees the change.
  (ctx as { run: unknown }).run = counted;
}

/**
 * `impl`, registered as `name`, with each run of its body logged and counted
 * when the client has an observer. A workflow (a generator) stays a
 * generator: the SDK tells them apart by their type. A run that suspends
 * (the workflow waits on a promise) has a start and no end; it starts again,
 * replayed from its recorded steps, when it resumes.
 */
export function observed<Args extends unknown[], Result>(
  name: string,
  impl: Implementation<Args, Result>,
): Implementation<Args, Result> {
  // An async generator is left as it is: none is registered, and yield* cannot delegate to one.
  if (impl instanceof AsyncGeneratorFunction) return impl;
  if (impl instanceof GeneratorFunction) {
    const workflow = impl as (ctx: Context, ...args: Args) => Generator<unknown, Result, unknown>;
    return namedAs(function* (ctx: Context, ...args: Args): Generator<unknown, Result, unknown> {
      const observer = ctx.getDependency<FunctionObserver>(DEPENDENCY);
      if (!observer) return yield* workflow(ctx, ...args);
      countSteps(ctx, name, observer.metrics);
      const run = (observer.runs.get(ctx.id) ?? 0) + 1;
      observer.runs.set(ctx.id, run);
      const end = startRun(observer, name, ctx, { run });
      let result: Result;
      try {
        result = yield* workflow(ctx, ...args);
      } catch (error) {
        end("rejected", error);
        throw error;
      }
      end("resolved");
      return result;
    }, impl);
  }
  return namedAs(async (ctx: Context, ...args: Args): Promise<Result> => {
    const observer = ctx.getDependency<FunctionObserver>(DEPENDENCY);
    if (!observer) return (await impl(ctx, ...args)) as Result;
    // A leaf function is one step: the SDK retries it whole, with the attempt on its context.
    countAttempt(observer.metrics, name, ctx.info.attempt);
    const end = startRun(observer, name, ctx, { attempt: ctx.info.attempt });
    try {
      const result = (await impl(ctx, ...args)) as Result;
      end("resolved");
      return result;
    } catch (error) {
      end("rejected", error);
      throw error;
    }
  }, impl);
}
