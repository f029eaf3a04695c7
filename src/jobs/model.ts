import { t } from "elysia";
import { LineItem, Slug, Text } from "../schemas.ts";

export const JobModels = {
  submit: t.Object({
    order_id: Slug,
    items: t.Array(LineItem, { minItems: 1, maxItems: 100 }),
    payment_source: t.Optional(
      Text({
        minLength: 1,
        maxLength: 64,
        description: "card token; tok_chargeDeclined is declined",
        examples: ["tok_visa", "tok_chargeDeclined"],
      }),
    ),
  }),
  started: t.Object({ job_id: t.String(), status: t.Literal("started") }),
  jobParams: t.Object({ id: Text({ minLength: 1, maxLength: 300 }) }),
  waitHeaders: t.Object({
    prefer: t.Optional(
      t.String({
        description: "`wait=<seconds>` (RFC 7240): wait for the job to settle, up to JOB_MAX_WAIT_MS",
      }),
    ),
  }),
  eventHeaders: t.Object({
    "last-event-id": t.Optional(
      t.String({
        description: "the id of the last event received: only later ones are sent",
        examples: ["1"],
      }),
    ),
  }),
  events: t.String({ description: "text/event-stream" }),
  /** One event of the stream, as a Server-Sent Events client reads it (its `data` is a Job's JSON). */
  eventSchema: {
    type: "object",
    required: ["data"],
    properties: {
      id: { type: "string", enum: ["1", "2", "3"], description: "1 running, 2 canceling, 3 settled" },
      event: {
        type: "string",
        enum: ["status", "error", "reconnect"],
        description:
          "`reconnect`: this API process is stopping; the stream ends, and the client reconnects with Last-Event-ID (after `retry` ms) to another process",
      },
      data: {
        type: "string",
        contentMediaType: "application/json",
        description: "the job, as GET /jobs/:id (a `reconnect` event: why, and when to come back)",
      },
      retry: { type: "integer", description: "ms before a client reconnects" },
    },
  } as Record<string, unknown>,
  job: t.Object({
    job_id: t.String(),
    status: t.Union([
      t.Literal("running"),
      t.Literal("done"),
      t.Literal("failed"),
      t.Literal("timed_out"),
      t.Literal("canceled"),
      t.Literal("canceling"),
    ]),
    result: t.Optional(t.Unknown()),
    reason: t.Optional(t.String()),
    started_at: t.Optional(
      t.String({
        format: "date-time",
        description:
          "when this API started the job (what GET /jobs orders by); absent for a job an older version of this API started",
        examples: ["2026-12-02T02:35:00.123Z"],
      }),
    ),
  }),
  cancel: t.Object({
    reason: t.Optional(
      Text({
        minLength: 1,
        maxLength: 200,
        description: "why; kept with the job",
        examples: ["customer asked"],
      }),
    ),
  }),
  canceling: t.Object({ job_id: t.String(), status: t.Literal("canceling") }),
  canceled: t.Object({ job_id: t.String(), status: t.Literal("canceled") }),
} as const;

/** `GET /jobs`: its query, and a page of jobs. */
export const JobListModels = {
  query: t.Object({
    // Literals, not t.UnionEnum: Elysia fills an absent query UnionEnum with its first value.
    state: t.Optional(
      t.Union(
        [
          t.Literal("running"),
          t.Literal("done"),
          t.Literal("failed"),
          t.Literal("canceled"),
          t.Literal("timed_out"),
        ],
        { description: "only jobs in this state (running includes those being canceled)" },
      ),
    ),
    kind: t.Optional(
      t.Union([t.Literal("order"), t.Literal("approval"), t.Literal("checkout")], {
        description: "only jobs of this kind",
      }),
    ),
    limit: t.Optional(
      t.Integer({ minimum: 1, maximum: 100, description: "most jobs on the page (20 when absent)" }),
    ),
    cursor: t.Optional(
      t.String({
        pattern: "^[A-Za-z0-9_-]{1,1024}$",
        description: "next_cursor of the previous page, with the same filters",
      }),
    ),
  }),
  page: t.Object({
    jobs: t.Array(JobModels.job),
    next_cursor: t.Optional(t.String({ description: "absent on the last page" })),
  }),
} as const;

export type JobListQuery = typeof JobListModels.query.static;
export type SubmitJob = typeof JobModels.submit.static;
export type CancelJob = typeof JobModels.cancel.static;
export type Job = typeof JobModels.job.static;
