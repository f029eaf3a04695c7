import type { Resonate } from "@resonatehq/sdk";
import type { Config, Targets } from "./config.ts";
import { Launcher } from "./shared/durable.ts";

/** What every feature's service functions get: the Resonate client, config, where functions run, a clock. */
export interface Deps {
  resonate: Resonate;
  launcher: Launcher;
  config: Config;
  targets: Targets;
  now: () => number;
}

export function makeDeps(
  resonate: Resonate,
  config: Config,
  targets: Targets,
  now: () => number = Date.now,
): Deps {
  return { resonate, launcher: new Launcher(resonate, config.colocated), config, targets, now };
}
