import { Elysia, t } from "elysia";
import { callers } from "../auth/index.ts";
import type { CallerAuth } from "../auth/service.ts";
import type { Deps } from "../deps.ts";
import { Links, linkTo, models, ResponseHeaders } from "../models.ts";
import { waitBudgetMs } from "../prefer.ts";
import { cancelJob } from "./cancel.ts";
import { listJobs } from "./list.ts";
import { JobListModels, JobModels } from "./model.ts";
import { getJob, submitJob } from "./service.ts";
import { jobEvents, waitForJob } from "./watch.ts";

/** From a cancel's answer to the job it stops: what it undid, once it has. */
const readCanceledJob = {
  GetJob: linkTo("getJob", { "path.id": "$response.body#/job_id" }, "read the job: canceling, then canceled"),
};

/**
 * Jobs: `POST /jobs` starts `process_order`; `GET /jobs` lists the caller's
 * jobs; `GET /jobs/:id` reads one (or waits for it, `Prefer: wait`);
 * `GET /jobs/:id/events` streams its status changes; `POST
 * /jobs/:id/cancel` asks its workflow to stop and undo what it did.
 */
export const jobRoutes = (deps: Deps, auth: CallerAuth) =>
  new Elysia({ name: "jobs", prefix: "/jobs" })
    .use(models)
    .use(callers(auth))
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
        caller: true,
        detail: {
          operationId: "submitJob",
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
    .get("", ({ query, caller }) => listJobs(deps, caller, query), {
      query: JobListModels.query,
      response: { 200: JobListModels.page, 400: "Error", 422: "Error", 501: "Error" },
      caller: true,
      detail: {
        operationId: "listJobs",
        summary: "The caller's jobs (every caller's for an operator), a page at a time",
        description:
          "Newest first (by when this API started each job), through Resonate's promise.search by the kind and owner each job is started with. A page may hold fewer than `limit` jobs and still have a `next_cursor`.",
        tags: ["jobs"],
        responses: { 501: { description: "The Resonate server this API uses cannot search promises" } },
      },
    })
    .get(
      "/:id",
      async ({ params, caller, headers, request, set }) => {
        const budget = waitBudgetMs(headers.prefer ?? null, 0, deps.config.jobMaxWaitMs);
        if (budget === 0) return getJob(deps, params.id, caller);
        const job = await waitForJob(deps, params.id, caller, budget, request.signal);
        set.headers["preference-applied"] = `wait=${budget / 1000}`;
        return job;
      },
      {
        params: JobModels.jobParams,
        headers: JobModels.waitHeaders,
        response: { 200: "Job", 404: "Error", 422: "Error" },
        caller: true,
        detail: {
          operationId: "getJob",
          summary: "Read a job's status, or wait for it to settle (Prefer: wait=<s>)",
          tags: ["jobs"],
          responses: {
            200: {
              description:
                "The job: at once, or with `Prefer: wait` as soon as it settles or once the wait runs out",
              headers: ResponseHeaders.preferenceApplied,
            },
          },
        },
      },
    )
    .get(
      "/:id/events",
      async ({ params, caller, headers, request }) => {
        const last = Number(headers["last-event-id"] ?? 0);
        const stream = await jobEvents(
          deps,
          params.id,
          caller,
          Number.isSafeInteger(last) ? last : 0,
          request.signal,
        );
        if (!stream) return new Response(null, { status: 204 });
        return new Response(stream, {
          headers: {
            "content-type": "text/event-stream; charset=utf-8",
            "cache-control": "no-cache",
            "x-accel-buffering": "no",
          },
        });
      },
      {
        params: JobModels.jobParams,
        headers: JobModels.eventHeaders,
        response: { 200: JobModels.events, 204: t.Void(), 404: "Error", 422: "Error" },
        caller: true,
        detail: {
          operationId: "jobEvents",
          summary: "A Server-Sent Events stream of the job's status changes, ending when it settles",
          tags: ["jobs"],
          responses: {
            200: {
              description:
                "Events `status` with ids 1 (running), 2 (canceling), 3 (settled: done, failed, canceled or timed_out); data is the job. Reconnect with Last-Event-ID to get only the later ones.",
              content: { "text/event-stream": { schema: JobModels.eventSchema } },
            },
            204: {
              description: "The settled job was sent already (Last-Event-ID 3): nothing more will come",
            },
          },
        },
      },
    )
    .post(
      "/:id/cancel",
      async ({ params, body, caller, set, status }) => {
        const answer = await cancelJob(deps, params.id, body, caller);
        if (answer.code === 200) return status(200, answer.body);
        set.headers.location = `/jobs/${encodeURIComponent(params.id)}`;
        return status(202, answer.body);
      },
      {
        parse: "json",
        params: JobModels.jobParams,
        body: JobModels.cancel,
        response: {
          200: JobModels.canceled,
          202: JobModels.canceling,
          400: "Error",
          404: "Error",
          409: "Error",
          415: "Error",
          422: "Error",
        },
        caller: true,
        detail: {
          operationId: "cancelJob",
          summary: "Ask an order's or an approval's workflow to stop, undoing what it did",
          tags: ["jobs"],
          responses: {
            200: { description: "The workflow stopped on a cancel", links: readCanceledJob },
            202: {
              description:
                "The cancel is recorded; the workflow stops at its next step and undoes what it did (asked again, the same)",
              headers: ResponseHeaders.location,
              links: readCanceledJob,
            },
            409: {
              description:
                "The job finished otherwise, has passed the point a cancel could stop (it ships, or records a failed payment), or cannot be canceled (checkout)",
            },
          },
        },
      },
    );
