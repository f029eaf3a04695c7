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
