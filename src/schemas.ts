import { Kind, type StringOptions, Type, TypeRegistry } from "@sinclair/typebox";
import { DefaultErrorFunction, SetErrorFunction } from "@sinclair/typebox/errors";
import { t } from "elysia";

/** Schemas more than one feature uses. Numbers are plain JSON Schema numbers: the API takes JSON bodies only, so no numeric strings. */

const TEXT_KIND = "Text";
TypeRegistry.Set<StringOptions>(TEXT_KIND, (schema, value) => {
  if (typeof value !== "string") return false;
  // JSON Schema counts characters (code points); a JS string's length counts UTF-16 units, two for each astral character.
  const length = [...value].length;
  return (
    (schema.minLength === undefined || length >= schema.minLength) &&
    (schema.maxLength === undefined || length <= schema.maxLength)
  );
});

// What TypeBox would say of a `t.String` with the same limits, rather than "Expected kind 'Text'".
SetErrorFunction((error) => {
  if (error.schema[Kind] !== TEXT_KIND) return DefaultErrorFunction(error);
  const { minLength, maxLength } = error.schema as StringOptions;
  if (typeof error.value !== "string") return "Expected string";
  if (minLength !== undefined && [...error.value].length < minLength)
    return `Expected string length greater or equal to ${minLength}`;
  return `Expected string length less or equal to ${maxLength}`;
});

/**
 * A string whose `minLength`/`maxLength` the API counts as the published
 * document's readers do: in characters (JSON Schema), not in UTF-16 units
 * (TypeBox's `t.String`), so 64 emoji fit in a `maxLength: 64`. For length
 * limits only; a `pattern` belongs on `t.String`.
 */
export const Text = (options: Omit<StringOptions, "pattern" | "format"> = {}) =>
  Type.Unsafe<string>({ ...options, [Kind]: TEXT_KIND, type: "string" });

/** Ids that become part of a durable promise id: no `.` (it separates lineage) and no `:` (it separates our prefixes). */
export const Slug = t.String({
  pattern: "^[A-Za-z0-9_-]{1,64}$",
  description: "letters, digits, _ and -; up to 64",
});

/** A sku of the price list; the sample catalogue has sku-1 … sku-100. */
export const Sku = Text({ minLength: 1, maxLength: 64, examples: ["sku-1", "sku-7"] });

export const LineItem = t.Object({
  sku: Sku,
  qty: Type.Integer({ minimum: 1, maximum: 10_000 }),
});
