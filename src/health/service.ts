import type { Deps } from "../deps.ts";
import { unavailable } from "../errors.ts";
import { isNotFound } from "../resonate/durable.ts";

/** Ready when the Resonate server answers a read (an unknown id's 404 is an answer). */
export async function checkReady(deps: Deps): Promise<{ status: "ready" }> {
  try {
    await deps.resonate.promises.get("readyz:probe");
  } catch (error) {
    if (!isNotFound(error))
      throw unavailable(`Resonate server not reachable: ${(error as Error).message}`, 1, "not_ready");
  }
  return { status: "ready" };
}
