/** The settings of `npm run traces` (main.ts) and of the picture of a trace (picture.ts). */
import { join, resolve } from "node:path";

const HERE = import.meta.dir;
const ROOT = resolve(HERE, "../..");

/** The trace backend's settings, in one place. */
export const TRACES_DEFAULTS = {
  /** The version requirements.txt pins, checked after installing. */
  version: "20.26.1",
  python: "python3",
  /** Not committed: the virtualenv, the spans and the log. */
  cacheDir: join(ROOT, ".cache/traces"),
  requirements: join(HERE, "requirements.txt"),
  port: 6006,
  /** How long Phoenix may take to answer `/healthz` after it starts (ms): it runs its migrations first. */
  startTimeoutMs: 120_000,
  /** How long Phoenix may take to stop before it is killed (ms). */
  stopGraceMs: 5_000,
} as const;
