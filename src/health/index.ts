import { Elysia, t } from "elysia";
import type { Deps } from "../deps.ts";
import { ErrorBody, unavailable } from "../errors.ts";
import { isNotFound } from "../resonate/durable.ts";

/** Liveness, and readiness = the Resonate server answers. */
export const healthRoutes = (deps: Deps) =>
  new Elysia({ name: "health" })
    .get("/healthz", () => ({ status: "ok" as const }), {
      response: { 200: t.Object({ status: t.Literal("ok") }) },
      detail: { summary: "The API process is up", tags: ["health"] },
    })
    .get(
      "/readyz",
      async () => {
        try {
          await deps.resonate.promises.get("readyz:probe");
        } catch (error) {
          if (!isNotFound(error))
            throw unavailable(`Resonate server not reachable: ${(error as Error).message}`, 1, "not_ready");
        }
        return { status: "ready" as const };
      },
      {
        response: { 200: t.Object({ status: t.Literal("ready") }), 503: ErrorBody },
        detail: { summary: "The Resonate server answers", tags: ["health"] },
      },
    );
