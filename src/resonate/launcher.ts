import type { Resonate, ResonateHandle } from "@resonatehq/sdk";
import type { DurableFunction } from "./contract.ts";
import { invocationOf } from "./durable.ts";

export interface LaunchOptions {
  /** The worker group's address (`poll://any@<group>`), used unless co-located. */
  target: string;
  /** How long the invocation may take before Resonate times it out (ms). */
  timeout: number;
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
  ) {}

  #optionsFor(target: string | undefined, timeout: number): ReturnType<Resonate["options"]> {
    const key = `${target ?? ""}\n${timeout}`;
    let options = this.#options.get(key);
    if (!options) {
      options = this.resonate.options(target === undefined ? { timeout } : { target, timeout });
      this.#options.set(key, options);
    }
    return options;
  }

  /** Starts `fn(...args)` under `id`, or joins the invocation already there; resolves once it is durably created. */
  begin<Args extends unknown[], Result>(
    fn: DurableFunction<Args, Result>,
    id: string,
    args: Args,
    opts: LaunchOptions,
  ): Promise<ResonateHandle<Result>> {
    if (this.colocated) {
      return this.resonate.beginRun<Result>(id, fn.name, ...args, this.#optionsFor(undefined, opts.timeout));
    }
    return this.resonate.beginRpc<Result>(id, fn.name, ...args, this.#optionsFor(opts.target, opts.timeout));
  }

  /**
   * Starts `fn` under `id` unless it exists; afterwards checks that the
   * stored invocation is the same function with the same arguments, so a
   * retried request joins the first one and a different request under the
   * same id is refused with `onMismatch()`.
   */
  async startOnce<Args extends unknown[], Result>(
    fn: DurableFunction<Args, Result>,
    id: string,
    args: Args,
    opts: LaunchOptions,
    onMismatch: () => Error,
  ): Promise<void> {
    await this.begin(fn, id, args, opts);
    const stored = await this.resonate.promises.get(id);
    const invocation = invocationOf(stored.param);
    if (invocation.func !== fn.name || JSON.stringify(invocation.args) !== JSON.stringify(args))
      throw onMismatch();
  }
}
