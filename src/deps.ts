import type { Resonate } from "@resonatehq/sdk";
import { BoundedMap } from "./bounded-map.ts";
import type { Config, Targets } from "./config.ts";
import { notFound } from "./errors.ts";
import { isNotFound } from "./resonate/durable.ts";
import { Launcher } from "./resonate/launcher.ts";

/** What every feature's service functions get: the Resonate client, config, where functions run, a clock, caches. */
export interface Deps {
  resonate: Resonate;
  launcher: Launcher;
  config: Config;
  targets: Targets;
  now: () => number;
  /** Approval promise ids by order, once the workflow has registered them (they never change). */
  approvalIds: BoundedMap<string, string>;
}

export function makeDeps(
  resonate: Resonate,
  config: Config,
  targets: Targets,
  now: () => number = Date.now,
): Deps {
  return {
    resonate,
    launcher: new Launcher(resonate, config.colocated),
    config,
    targets,
    now,
    approvalIds: new BoundedMap(100_000),
  };
}

export type PromiseRecord = Awaited<ReturnType<Resonate["promises"]["get"]>>;

/** Reads a durable promise without waiting; an unknown id is a 404 naming `what`. */
export async function readPromise(deps: Deps, id: string, what: string): Promise<PromiseRecord> {
  try {
    return await deps.resonate.promises.get(id);
  } catch (error) {
    if (isNotFound(error)) throw notFound(what);
    throw error;
  }
}
