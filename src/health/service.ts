import { isNotFound } from "../../core/resonate/durable.ts";
import type { Deps } from "../deps.ts";
import { unavailable } from "../errors.ts";

/**
 * Ready when the Resonate server answers a read (an unknown id's 404 is an
 * answer) and this process is not stopping: once it is, 503 `draining`, so
 * a load balancer sends new requests to the other processes.
 */
export async function checkReady(deps: Deps): Promise<{ status: "ready" }> {
  if (deps.draining.aborted)
    throw unavailable("this API process is stopping; the others take new requests", 1, "draining");
  try {
    await deps.resonate.promises.get("readyz:probe");
  } catch (error) {
    if (!isNotFound(error))
      throw unavailable(`Resonate server not reachable: ${(error as Error).message}`, 1, "not_ready");
  }
  return { status: "ready" };
}
