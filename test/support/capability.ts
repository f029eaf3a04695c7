import { test } from "bun:test";
import { type Capability, defaultServerKind, missingCapability } from "../../harness/index.ts";

/**
 * `test` when the server this run uses (ours, or the real one that
 * `RESONATE_BIN` names) has `capability`; otherwise a `test.skip` whose name
 * says what is missing. The one place a test asks which server it runs on.
 *
 *   requireCapability("trace")("--trace writes one line per call", async () => { … });
 */
export function requireCapability(capability: Capability): typeof test {
  const missing = missingCapability(capability);
  if (missing === undefined) return test;
  const skip = (name: string, fn: Parameters<typeof test.skip>[1], timeout?: number) =>
    test.skip(`${name} (skipped on the ${defaultServerKind()} server: ${missing})`, fn, timeout);
  return skip as unknown as typeof test;
}
