/**
 * Typed durable functions. A `DurableFunction<Args, Result>` is a name that
 * carries its argument tuple and result type; `register` binds an
 * implementation to it (a wrong signature does not compile) and `rpc`,
 * `clientRpc` and `Launcher.begin` call it, so a renamed function or a
 * changed argument list is found by the type checker, not at run time.
 */
import type { Context, Resonate } from "@resonatehq/sdk";
import { observed } from "../observability/functions.ts";

type Options = ReturnType<Resonate["options"]>;

export interface DurableFunction<Args extends unknown[], Result> {
  /** The name it is registered under and called by. */
  readonly name: string;
  /** Never set: it only carries the types. */
  readonly signature?: (...args: Args) => Result;
}

export type ArgsOf<F> = F extends DurableFunction<infer A, unknown> ? A : never;
export type ResultOf<F> = F extends DurableFunction<unknown[], infer R> ? R : never;

/** Declares a durable function's contract: the one place its name is written. */
export function durableFunction<Args extends unknown[], Result>(name: string): DurableFunction<Args, Result> {
  return Object.freeze({ name });
}

/** A generator workflow, or a leaf that returns (a promise of) its result. */
export type Implementation<Args extends unknown[], Result> = (
  ctx: Context,
  ...args: Args
) => Generator<unknown, Result, unknown> | Promise<Result> | Result;

/**
 * Registers `impl` as `fn` on this process's Resonate client, its runs and
 * steps logged and counted when the client has an observer (`observeFunctions`).
 */
export function register<Args extends unknown[], Result>(
  resonate: Resonate,
  fn: DurableFunction<Args, Result>,
  impl: Implementation<Args, Result>,
): void {
  resonate.register(fn.name, observed(fn.name, impl));
}

/** `ctx.rpc` of a contract, from inside a workflow: `yield* rpc(ctx, Db.getPrice, [sku], opts)`. */
export function rpc<Args extends unknown[], Result>(
  ctx: Context,
  fn: DurableFunction<Args, Result>,
  args: Args,
  opts: Options,
) {
  return ctx.rpc<Result>(fn.name, ...args, opts);
}

/** `resonate.rpc` of a contract, from outside any workflow: runs `fn` under `id` and waits for it. */
export function clientRpc<Args extends unknown[], Result>(
  resonate: Resonate,
  id: string,
  fn: DurableFunction<Args, Result>,
  args: Args,
  opts: Options,
): Promise<Result> {
  return resonate.rpc<Result>(id, fn.name, ...args, opts);
}
