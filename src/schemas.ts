import { Type } from "@sinclair/typebox";
import { t } from "elysia";

/** Schemas more than one feature uses. Numbers are plain JSON Schema numbers: the API takes JSON bodies only, so no numeric strings. */

/** Ids that become part of a durable promise id: no `.` (it separates lineage) and no `:` (it separates our prefixes). */
export const Slug = t.String({
  pattern: "^[A-Za-z0-9_-]{1,64}$",
  description: "letters, digits, _ and -; up to 64",
});

export const LineItem = t.Object({
  sku: t.String({ minLength: 1, maxLength: 64 }),
  qty: Type.Integer({ minimum: 1, maximum: 10_000 }),
});
