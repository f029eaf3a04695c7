import { Elysia } from "elysia";
import type { Deps } from "../deps.ts";
import { models, unavailableResponse } from "../models.ts";
import { HealthModels } from "./model.ts";
import { checkReady } from "./service.ts";

/** Liveness, and readiness = the Resonate server answers. */
export const healthRoutes = (deps: Deps) =>
  new Elysia({ name: "health" })
    .use(models)
    .get("/healthz", () => ({ status: "ok" as const }), {
      response: { 200: HealthModels.live },
      detail: { operationId: "live", summary: "The API process is up", tags: ["health"] },
    })
    .get("/readyz", () => checkReady(deps), {
      response: { 200: HealthModels.ready, 503: "Error" },
      detail: {
        operationId: "ready",
        summary: "The Resonate server answers, and this process is not stopping (503 draining once it is)",
        tags: ["health"],
        responses: { 503: unavailableResponse },
      },
    });
