import { t } from "elysia";

/** Ids that become part of a durable promise id: no `.` (it separates lineage) and no `:` (it separates our prefixes). */
export const Slug = t.String({
  pattern: "^[A-Za-z0-9_-]{1,64}$",
  description: "letters, digits, _ and -; up to 64",
});

export const LineItem = t.Object({
  sku: t.String({ minLength: 1, maxLength: 64 }),
  qty: t.Integer({ minimum: 1, maximum: 10_000 }),
});

export const JobModels = {
  submit: t.Object({
    order_id: Slug,
    items: t.Array(LineItem, { minItems: 1, maxItems: 100 }),
    payment_source: t.Optional(
      t.String({ minLength: 1, maxLength: 64, description: "card token; tok_chargeDeclined is declined" }),
    ),
  }),
  started: t.Object({ job_id: t.String(), status: t.Literal("started") }),
  jobParams: t.Object({ id: t.String({ minLength: 1, maxLength: 300 }) }),
  job: t.Object({
    job_id: t.String(),
    status: t.Union([
      t.Literal("running"),
      t.Literal("done"),
      t.Literal("failed"),
      t.Literal("timed_out"),
      t.Literal("canceled"),
    ]),
    result: t.Optional(t.Unknown()),
    reason: t.Optional(t.String()),
  }),
} as const;

export type SubmitJob = typeof JobModels.submit.static;
export type Job = typeof JobModels.job.static;
