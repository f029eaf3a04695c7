import type { Resonate, ResonateHandle } from "@resonatehq/sdk";
import type { InvocationOutcome } from "../../core/observability/metrics.ts";
import { traceTags } from "../../core/observability/tracing.ts";
import type { DurableFunction } from "../../core/resonate/contract.ts";
import { invocationOf } from "../../core/resonate/durable.ts";

export interface LaunchOptions {
  /** The worker group's address (`poll://any@<group>`), used unless co-located. */
  target: string;
  /** How long the invocation may take before Resonate times it out (ms). */
  timeout: number;
  /** Tags of the invocation's root promise (what `promise.search` filters by). */
  tags?: Readonly<Record<string, string>>;
  /** More tags of the root promise, which `startOnce` does not ask a retry to repeat (what only the first start knows). */
  marks?: Readonly<Record<string, string>>;
}

/** Told of every start through a Launcher and of every result awaited through the handles it returns. */
export interface LaunchObserver {
  /** `begin` was called for `id` (before the server acknowledged it). */
  starting(fn: string, id: string): void;
  /** The invocation is durably created (or was there already). */
  started(fn: string): void;
  /** A result awaited through the handle settled, `seconds` after `begin` was called; told once per handle. */
  finished(fn: string, outcome: InvocationOutcome, seconds: number): void;
}

/**
 * How an awaited result that rejected ended. The SDK rejects with these two
 * errors for a promise that timed out or was canceled, and with the
 * function's own error (decoded) when it failed.
 */
function outcomeOf(error: unknown): InvocationOutcome {
  if (error instanceof Error && error.message === "Promise timedout") return "timed_out";
  if (error instanceof Error && error.message === "Promise canceled") return "canceled";
  return "failed";
}

/**
 * The root promise's tags: `tags` and `marks` together, and the active
 * trace's `traceparent` (and `tracestate`) when tracing is on, so the
 * workers that run it continue the trace; or none. The trace is a mark:
 * a retried request, in a trace of its own, still joins the first start.
 */
function tagsOf(opts: LaunchOptions): LaunchOptions["tags"] {
  const traced = traceTags();
  if (traced.traceparent === undefined) return opts.marks ? { ...opts.tags, ...opts.marks } : opts.tags;
  return { ...traced, ...opts.tags, ...opts.marks };
}

/**
 * Starts durable functions the way the deployment is laid out: by RPC to
 * a worker group, or in this process (`beginRun`) when co-located.
 */
export class Launcher {
  /** Options by target and timeout: building them parses the target as a URL, on every request otherwise. */
  readonly #options = new Map<string, ReturnType<Resonate["options"]>>();

  constructor(
    readonly resonate: Resonate,
    readonly colocated: boolean,
    readonly observer?: LaunchObserver,
  ) {}

  #optionsFor(
    target: string | undefined,
    timeout: number,
    version: number,
    tags: LaunchOptions["tags"],
  ): ReturnType<Resonate["options"]> {
    const key = `${target ?? ""}\n${timeout}\n${version}`;
    let options = this.#options.get(key);
    if (!options) {
      options = this.resonate.options(
        target === undefined ? { timeout, version } : { target, timeout, version },
      );
      this.#options.set(key, options);
    }
    // Tags name callers and traces, which are unbounded: tagged options are a copy of the kept ones, not kept.
    if (!tags) return options;
    return Object.assign(Object.create(Object.getPrototypeOf(options)) as typeof options, options, {
      tags: { ...tags },
    });
  }

  /** Starts `fn(...args)` under `id` at `fn`'s version, or joins the invocation already there; resolves once it is durably created. */
  begin<Args extends unknown[], Result>(
    fn: DurableFunction<Args, Result>,
    id: string,
    args: Args,
    opts: LaunchOptions,
  ): Promise<ResonateHandle<Result>> {
    const observer = this.observer;
    const startedAt = performance.now();
    observer?.starting(fn.name, id);
    const begun = this.colocated
      ? this.resonate.beginRun<Result>(
          id,
          fn.name,
          ...args,
          this.#optionsFor(undefined, opts.timeout, fn.version, tagsOf(opts)),
        )
      : this.resonate.beginRpc<Result>(
          id,
          fn.name,
          ...args,
          this.#optionsFor(opts.target, opts.timeout, fn.version, tagsOf(opts)),
        );
    if (!observer) return begun;
    return begun.then((handle) => {
      observer.started(fn.name);
      let told = false;
      const tell = (outcome: InvocationOutcome) => {
        if (told) return;
        told = true;
        observer.finished(fn.name, outcome, (performance.now() - startedAt) / 1000);
      };
      return {
        ...handle,
        result: () =>
          handle.result().then(
            (value) => {
              tell("completed");
              return value;
            },
            (error: unknown) => {
              tell(outcomeOf(error));
              throw error;
            },
          ),
      };
    });
  }

  /**
   * Starts `fn` under `id` unless it exists; afterwards checks that the
   * stored invocation is the same function with the same arguments (and
   * the same `tags`, not `marks`), so a retried request joins the first
   * one and a different request under the same id (or another caller's) is
   * refused with `onMismatch()`. Resolves with the handle.
   */
  async startOnce<Args extends unknown[], Result>(
    fn: DurableFunction<Args, Result>,
    id: string,
    args: Args,
    opts: LaunchOptions,
    onMismatch: () => Error,
  ): Promise<ResonateHandle<Result>> {
    const handle = await this.begin(fn, id, args, opts);
    const stored = await this.resonate.promises.get(id);
    const invocation = invocationOf(stored.param);
    const sameTags = Object.entries(opts.tags ?? {}).every(([key, value]) => stored.tags?.[key] === value);
    if (invocation.func !== fn.name || JSON.stringify(invocation.args) !== JSON.stringify(args) || !sameTags)
      throw onMismatch();
    return handle;
  }
}
