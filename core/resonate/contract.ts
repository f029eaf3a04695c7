/**
 * Typed durable functions. A `DurableFunction<Args, Result>` is a name and
 * a version that carry an argument tuple and a result type; `register`
 * binds an implementation to it at that version (a wrong signature does not
 * compile) and `rpc`, `clientRpc` and `Launcher.begin` start new work at
 * that version, so a renamed function or a changed argument list is found by
 * the type checker, not at run time, and a worker only runs the code of the
 * version a promise was started with (one without it releases the task).
 */
import type { Context, Resonate } from "@resonatehq/sdk";
import { type Implementation, observed, rpcTraceTags } from "../observability/functions.ts";
import { traceTags } from "../observability/tracing.ts";

type Options = ReturnType<Resonate["options"]>;

export interface DurableFunction<Args extends unknown[], Result> {
  /** The name it is registered under and called by. */
  readonly name: string;
  /** The version new work starts at, written into each root promise (1, 2, …). */
  readonly version: number;
  /** Never set: it only carries the types. */
  readonly signature?: (...args: Args) => Result;
}

export type ArgsOf<F> = F extends DurableFunction<infer A, unknown> ? A : never;
export type ResultOf<F> = F extends DurableFunction<unknown[], infer R> ? R : never;

/** Declares a durable function's contract at one version: the one place its name and that version are written. */
export function durableFunction<Args extends unknown[], Result>(
  name: string,
  version = 1,
): DurableFunction<Args, Result> {
  if (!Number.isSafeInteger(version) || version < 1)
    throw new Error(`${name}: a version is a whole number from 1, got ${version}`);
  return Object.freeze({ name, version });
}

/**
 * `opts` at `version`: the contract, not the caller, says which version new
 * work starts at. Inside a traced run or request, the call's promise is
 * also tagged with `traced` (a `traceparent`: the call's span), so the run
 * it starts is in the same trace; the tags the caller set win.
 */
function withVersion(opts: Options, version: number, traced: Record<string, string> = traceTags()): Options {
  const untraced = traced.traceparent === undefined;
  if (opts.version === version && untraced) return opts;
  const tags = untraced ? opts.tags : { ...traced, ...opts.tags };
  return Object.assign(Object.create(Object.getPrototypeOf(opts)) as Options, opts, { version, tags });
}

export type { Implementation };

/**
 * Registers `impl` as `fn` on this process's Resonate client, its runs and
 * steps logged and counted when the client has an observer (`observeFunctions`).
 */
export function register<Args extends unknown[], Result>(
  resonate: Resonate,
  fn: DurableFunction<Args, Result>,
  impl: Implementation<Args, Result>,
): void {
  resonate.register(fn.name, observed(fn.name, impl), { version: fn.version });
}

/** `ctx.rpc` of a contract, from inside a workflow: `yield* rpc(ctx, Db.getPrice, [sku], opts)`. */
export function rpc<Args extends unknown[], Result>(
  ctx: Context,
  fn: DurableFunction<Args, Result>,
  args: Args,
  opts: Options,
) {
  return ctx.rpc<Result>(fn.name, ...args, withVersion(opts, fn.version, rpcTraceTags(ctx, fn.name)));
}

/** `resonate.rpc` of a contract, from outside any workflow: runs `fn` under `id` and waits for it. */
export function clientRpc<Args extends unknown[], Result>(
  resonate: Resonate,
  id: string,
  fn: DurableFunction<Args, Result>,
  args: Args,
  opts: Options,
): Promise<Result> {
  return resonate.rpc<Result>(id, fn.name, ...args, withVersion(opts, fn.version));
}
