import { Elysia } from "elysia";
import { authenticated } from "../auth/index.ts";
import { Secured } from "../auth/model.ts";
import type { CallerAuth } from "../auth/service.ts";
import type { Deps } from "../deps.ts";
import { Links, models, ResponseHeaders } from "../models.ts";
import { JobModels } from "./model.ts";
import { getJob, submitJob } from "./service.ts";

/** Submit-and-poll: `POST /jobs` starts `process_order`; `GET /jobs/:id` reads any job without blocking. */
export const jobRoutes = (deps: Deps, auth: CallerAuth) =>
  new Elysia({ name: "jobs", prefix: "/jobs" })
    .use(models)
    .use(authenticated(auth))
    .post(
      "",
      async ({ body, caller, set, status }) => {
        const id = await submitJob(deps, body, caller);
        set.headers.location = `/jobs/${encodeURIComponent(id)}`;
        return status(202, { job_id: id, status: "started" as const });
      },
      {
        parse: "json",
        body: "JobSubmission",
        response: { 202: "JobStarted", 400: "Error", 409: "Error", 415: "Error", 422: "Error" },
        detail: {
          operationId: "submitJob",
          security: Secured,
          summary: "Submit an order for processing",
          tags: ["jobs"],
          responses: {
            202: {
              description: "The order's workflow runs (or was already running for the same order)",
              headers: ResponseHeaders.location,
              links: Links.readJob,
            },
          },
        },
      },
    )
    .get("/:id", ({ params, caller }) => getJob(deps, params.id, caller), {
      params: JobModels.jobParams,
      response: { 200: "Job", 404: "Error", 422: "Error" },
      detail: {
        operationId: "getJob",
        security: Secured,
        summary: "Read a job's status without waiting",
        tags: ["jobs"],
      },
    });
