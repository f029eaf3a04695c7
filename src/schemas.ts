import { t } from "elysia";

/** Schemas more than one feature uses. */

/** Ids that become part of a durable promise id: no `.` (it separates lineage) and no `:` (it separates our prefixes). */
export const Slug = t.String({
  pattern: "^[A-Za-z0-9_-]{1,64}$",
  description: "letters, digits, _ and -; up to 64",
});

export const LineItem = t.Object({
  sku: t.String({ minLength: 1, maxLength: 64 }),
  qty: t.Integer({ minimum: 1, maximum: 10_000 }),
});
