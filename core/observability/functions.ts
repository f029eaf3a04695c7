/**
 * Durable functions as the process that runs them sees them: a log line and
 * a count when a function's body starts and when it ends, and a count for
 * each attempt of its steps; with tracing on, a span for each run, each
 * step it executes and each RPC it makes (none for what a replay finds
 * done). `register` (core/resonate/contract.ts) wraps every implementation
 * with `observed`; the wrapper finds what to log, count and trace on the
 * client it runs on (`observeFunctions`), so a client without an observer
 * runs its functions exactly as registered.
 */
import {
  context,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Context as TraceContext,
  type Tracer,
  trace,
} from "@opentelemetry/api";
import type { Context, Resonate } from "@resonatehq/sdk";
import { BoundedMap } from "../bounded-map.ts";
import type { RunTraces } from "../resonate/network.ts";
import type { Logger } from "./logger.ts";
import type { FunctionMetrics, RunKind, RunOutcome } from "./metrics.ts";
import { logIds, spanContextOf, TRACER_NAME, traceTags } from "./tracing.ts";

/** Where the wrapper finds the observer: a dependency of the Resonate client (`ctx.getDependency`). */
const DEPENDENCY = "observability:functions";

/** Workflow ids whose runs this process remembers, to tell a first run from a replay. */
const REMEMBERED_RUNS = 10_000;

/** A durable function's code: a generator workflow, or a leaf that returns (a promise of) its result. */
export type Implementation<Args extends unknown[], Result> = (
  ctx: Context,
  ...args: Args
) => Generator<unknown, Result, unknown> | Promise<Result> | Result;

interface FunctionObserver {
  metrics: FunctionMetrics;
  log: Logger;
  /** Runs of each workflow id in this process so far. */
  runs: BoundedMap<string, number>;
  /** With tracing on: the trace tags of a promise this process took, which its run's span continues. */
  traceOf?: ((id: string) => Readonly<Record<string, string>> | undefined) | undefined;
  /** With tracing on: the version at which this process took a task (`RunTraces.takenAt`). */
  takenAt?: ((id: string) => number | undefined) | undefined;
  /** The tracer this process's spans are made with, got once (each `getTracer` is a lookup). */
  tracer: Tracer;
  /** The spans of workflow runs under way, by promise id, ended when the run stops to wait. */
  openRuns: Map<string, Span>;
  /** RPC spans by the `traceparent` their promise was sent with, until the server says whether it created it. */
  rpcs: BoundedMap<string, Span>;
  /** Pending step promises: id → the `traceparent` of the run that created it, told apart from this run's. */
  stepTraces: BoundedMap<string, string>;
}

/**
 * Logs and counts the runs of every function registered through `register`
 * on `resonate`; with `traceOf` (tracing on), each run is also a span in the
 * trace its promise's tags name.
 */
export function observeFunctions(
  resonate: Resonate,
  opts: {
    metrics: FunctionMetrics;
    log: Logger;
    /** With tracing on: the client's `traces`. */
    traces?: RunTraces | undefined;
  },
): void {
  const observer: FunctionObserver = {
    metrics: opts.metrics,
    log: opts.log,
    traceOf: opts.traces?.traceOf,
    takenAt: opts.traces?.takenAt,
    tracer: trace.getTracer(TRACER_NAME),
    runs: new BoundedMap(REMEMBERED_RUNS),
    openRuns: new Map(),
    rpcs: new BoundedMap(OPEN_RUNS),
    stepTraces: new BoundedMap(OPEN_RUNS),
  };
  // An RPC's span is kept when its promise is new, and dropped unended (never exported) when a replay found it made.
  opts.traces?.onTracedPromise(({ id, sent, stored }) => {
    const rpc = sent === undefined ? undefined : observer.rpcs.take(sent);
    if (!rpc) {
      if (stored !== undefined) observer.stepTraces.set(id, stored);
      return;
    }
    if (stored !== sent) return;
    rpc.setAttribute("resonate.promise_id", id);
    rpc.end();
  });
  // A run that stops to wait ends there; the run that resumes it is a span of its own.
  opts.traces?.onBlocked((id) => {
    const span = observer.openRuns.get(id);
    if (!span) return;
    observer.openRuns.delete(id);
    span.setAttribute("resonate.suspended", true);
    span.end();
  });
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
  span?: Span,
): (outcome: RunOutcome, error?: unknown) => void {
  const startedAt = performance.now();
  // The run's lines name its span (`trace_id`, `span_id`) when it has one.
  const fields = {
    function: name,
    id: ctx.id,
    workflow_id: ctx.originId,
    ...count,
    ...(span ? logIds(span) : {}),
  };
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

/**
 * A span for one run of `name`, in the trace its promise's tags name (a
 * trace of its own when they name none): `run <name>`, with the promise,
 * the workflow, and the run or attempt number. `undefined` with tracing off.
 */
function startRunSpan(
  observer: FunctionObserver,
  name: string,
  ctx: Context,
  count: { attempt: number } | { run: number },
): { span: Span; active: TraceContext } | undefined {
  if (!observer.traceOf) return undefined;
  const parent = propagation.extract(ROOT_CONTEXT, observer.traceOf(ctx.id) ?? {});
  // A leaf's task taken before (its holder died, or gave it back) runs again from its first attempt.
  const rerun = "attempt" in count && (observer.takenAt?.(ctx.id) ?? 1) > 1;
  const span = observer.tracer.startSpan(
    `run ${name}`,
    {
      attributes: {
        "resonate.function": name,
        "resonate.promise_id": ctx.id,
        "resonate.workflow_id": ctx.originId,
        ...("attempt" in count
          ? { "resonate.attempt": count.attempt, "resonate.retry": count.attempt > 1 || rerun }
          : { "resonate.run": count.run, "resonate.replay": count.run > 1 }),
        ...(rerun ? { "resonate.rerun": true } : {}),
      },
    },
    parent,
  );
  return { span, active: trace.setSpan(parent, span) };
}

/** Runs whose spans may stay open at once; past it the oldest is ended (a run the SDK dropped without a word). */
const OPEN_RUNS = 10_000;

/** Keeps a workflow run's span until the run ends or stops to wait. */
function keepOpen(observer: FunctionObserver, id: string, span: Span): void {
  observer.openRuns.get(id)?.end();
  observer.openRuns.set(id, span);
  if (observer.openRuns.size <= OPEN_RUNS) return;
  const [oldest, stale] = observer.openRuns.entries().next().value as [string, Span];
  observer.openRuns.delete(oldest);
  stale.setAttribute("resonate.abandoned", true);
  stale.end();
}

/** Ends a run's span: an error when the run rejected. */
function endRunSpan(traced: { span: Span } | undefined, error?: unknown): void {
  if (!traced) return;
  if (error !== undefined) {
    traced.span.recordException(error instanceof Error ? error : new Error(String(error)));
    traced.span.setStatus({ code: SpanStatusCode.ERROR });
  }
  traced.span.end();
}

/**
 * `it`, each of its steps (`next`, `throw`, `return`) taken with `active`
 * as the current trace context, so what the workflow starts between two
 * yields (an RPC, a step) is in its run's span: a generator's body runs
 * only while it is being stepped. `yield*` delegates to it as to `it`.
 */
function inContext<T, R>(active: TraceContext, it: Generator<T, R, unknown>): Iterable<T, R, unknown> {
  const within: Iterator<T, R, unknown> & Iterable<T, R, unknown> = {
    next: (...value: [] | [unknown]) => context.with(active, () => it.next(...value)),
    throw: (error: unknown) => context.with(active, () => it.throw(error)),
    return: (value?: R) => context.with(active, () => it.return(value as R)),
    [Symbol.iterator]: () => within,
  };
  return within;
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
 * The SDK calls a step only when it runs now, never for a result it
 * replays, so with tracing on (`run`: the run's span) each attempt is a
 * span of its own (`step <name>`, or `step` for an anonymous function,
 * with the step's promise id), a retry marked with its attempt, and
 * what the step calls (a third party) is inside it. A step's promise is
 * tagged with the run's span, so a step that an earlier run began and
 * never ended (its process died) is told apart when it runs again: a
 * retry, `resonate.rerun`, linked to that run. A step that is a generator
 * (a local sub-workflow) is left as it is.
 */
function countSteps(ctx: Context, name: string, observer: FunctionObserver, run?: TraceContext): void {
  const original = ctx.run;
  const runTags = run ? traceTags(run) : undefined;
  const counted = (func: unknown, ...args: unknown[]) => {
    if (typeof func !== "function" || isGeneratorFunction(func)) return original(func as string, ...args);
    const step: Step = (stepCtx, ...stepArgs) => {
      countAttempt(observer.metrics, name, stepCtx.info.attempt);
      if (!run) return (func as Step)(stepCtx, ...stepArgs);
      const attempt = stepCtx.info.attempt;
      const createdBy = observer.stepTraces.take(stepCtx.id);
      const earlier = createdBy !== runTags?.traceparent ? createdBy : undefined;
      const earlierRun = earlier && spanContextOf({ traceparent: earlier });
      const span = observer.tracer.startSpan(
        (func as Step).name ? `step ${(func as Step).name}` : "step",
        {
          attributes: {
            "resonate.function": name,
            "resonate.promise_id": stepCtx.id,
            "resonate.attempt": attempt,
            "resonate.retry": attempt > 1 || earlier !== undefined,
            ...(earlier !== undefined ? { "resonate.rerun": true } : {}),
          },
          links: earlierRun ? [{ context: earlierRun, attributes: { "resonate.link": "earlier run" } }] : [],
        },
        run,
      );
      return context.with(trace.setSpan(run, span), async () => {
        try {
          const result = await (func as Step)(stepCtx, ...stepArgs);
          span.end();
          return result;
        } catch (error) {
          endRunSpan({ span }, error);
          throw error;
        }
      });
    };
    return original(namedAs(step, func), ...(runTags ? tagged(ctx, args, runTags) : args));
  };
  // The context is this run's own (the SDK builds one per run), so nothing else sees the change.
  (ctx as { run: unknown }).run = counted;
}

/** Whether `value` is the SDK's options object: it carries the SDK's own `ResonateOptions` symbol. */
const isOptions = (value: unknown): value is ReturnType<Context["options"]> =>
  typeof value === "object" &&
  value !== null &&
  Object.getOwnPropertySymbols(value).some((key) => key.description === "ResonateOptions");

/**
 * A step's arguments with `tags` added to its options (the SDK's options
 * object is their last one, when given). Options are built only when the
 * step has none: the SDK's builder parses the target as a URL each time.
 */
function tagged(ctx: Context, args: unknown[], tags: Record<string, string>): unknown[] {
  const last = args.at(-1);
  if (!isOptions(last)) return [...args, ctx.options({ tags })];
  const opts = Object.assign(Object.create(Object.getPrototypeOf(last)) as typeof last, last, {
    tags: { ...tags, ...last.tags },
  });
  return [...args.slice(0, -1), opts];
}

/**
 * The tags of an RPC that a traced run makes to `callee`: the context of a
 * span of its own (`rpc <callee>`) under the run's, which the callee's run
 * continues. The span is ended, and exported, only if the server says the
 * call's promise is new; a replay that makes the call again finds it made
 * and its span is dropped. Outside a traced run, the active context's tags.
 */
export function rpcTraceTags(ctx: Context, callee: string): Record<string, string> {
  const observer = ctx.getDependency<FunctionObserver>(DEPENDENCY);
  const active = context.active();
  if (!observer?.traceOf || !trace.getSpan(active)) return traceTags(active);
  const span = observer.tracer.startSpan(
    `rpc ${callee}`,
    { kind: SpanKind.CLIENT, attributes: { "resonate.function": callee, "resonate.caller": ctx.id } },
    active,
  );
  const tags = traceTags(trace.setSpan(active, span));
  if (tags.traceparent) observer.rpcs.set(tags.traceparent, span);
  return tags;
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
      const run = (observer.runs.get(ctx.id) ?? 0) + 1;
      observer.runs.set(ctx.id, run);
      const traced = startRunSpan(observer, name, ctx, { run });
      const end = startRun(observer, name, ctx, { run }, traced?.span);
      if (traced) keepOpen(observer, ctx.id, traced.span);
      countSteps(ctx, name, observer, traced?.active);
      let result: Result;
      try {
        result = traced
          ? yield* inContext(traced.active, workflow(ctx, ...args))
          : yield* workflow(ctx, ...args);
      } catch (error) {
        end("rejected", error);
        observer.openRuns.delete(ctx.id);
        endRunSpan(traced, error);
        throw error;
      }
      end("resolved");
      observer.openRuns.delete(ctx.id);
      endRunSpan(traced);
      return result;
    }, impl);
  }
  return namedAs(async (ctx: Context, ...args: Args): Promise<Result> => {
    const observer = ctx.getDependency<FunctionObserver>(DEPENDENCY);
    if (!observer) return (await impl(ctx, ...args)) as Result;
    // A leaf function is one step: the SDK retries it whole, with the attempt on its context.
    countAttempt(observer.metrics, name, ctx.info.attempt);
    const traced = startRunSpan(observer, name, ctx, { attempt: ctx.info.attempt });
    const end = startRun(observer, name, ctx, { attempt: ctx.info.attempt }, traced?.span);
    try {
      const result = (await (traced
        ? context.with(traced.active, () => impl(ctx, ...args))
        : impl(ctx, ...args))) as Result;
      end("resolved");
      endRunSpan(traced);
      return result;
    } catch (error) {
      end("rejected", error);
      endRunSpan(traced, error);
      throw error;
    }
  }, impl);
}
