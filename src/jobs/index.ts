import { Elysia } from "elysia";
import type { Deps } from "../deps.ts";
import { ErrorBody } from "../errors.ts";
import { JobModels } from "./model.ts";
import { getJob, submitJob } from "./service.ts";

/** Submit-and-poll: `POST /jobs` starts `process_order`; `GET /jobs/:id` reads any job without blocking. */
export const jobRoutes = (deps: Deps) =>
  new Elysia({ name: "jobs", prefix: "/jobs" })
    .post(
      "",
      async ({ body, set, status }) => {
        const id = await submitJob(deps, body);
        set.headers.location = `/jobs/${encodeURIComponent(id)}`;
        return status(202, { job_id: id, status: "started" as const });
      },
      {
        body: JobModels.submit,
        response: { 202: JobModels.started, 409: ErrorBody, 422: ErrorBody },
        detail: { summary: "Submit an order for processing", tags: ["jobs"] },
      },
    )
    .get("/:id", ({ params }) => getJob(deps, params.id), {
      params: JobModels.jobParams,
      response: { 200: JobModels.job, 404: ErrorBody, 422: ErrorBody },
      detail: { summary: "Read a job's status without waiting", tags: ["jobs"] },
    });
