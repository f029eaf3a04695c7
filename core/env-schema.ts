/**
 * Settings as TypeBox schema values: one `Type.Object` keyed by environment
 * variable, each property carrying its default, range and text. The same
 * value parses a process's environment (`parseEnv`), words its errors and
 * writes docs/configuration.md (`npm run docs`).
 */
import {
  FormatRegistry,
  Kind,
  type SchemaOptions,
  type Static,
  type TLiteral,
  type TObject,
  type TSchema,
  type TUnion,
  Type,
} from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";

export class ConfigError extends Error {
  override name = "ConfigError";
}

export type Env = Record<string, string | undefined>;

/** What a setting says beside its schema. */
export interface SettingText extends SchemaOptions {
  /** What it does, in Markdown: the docs' meaning column. */
  description: string;
  /** The default as the docs show it, where the code works it out from other settings. */
  shownDefault?: string;
  /** What a good value looks like, for a string: "an http(s) URL". */
  expected?: string;
  /** Never echoed in an error (tokens, secrets). */
  secret?: boolean;
}

FormatRegistry.Set("http-url", (value) => URL.canParse(value) && /^https?:$/.test(new URL(value).protocol));

/** A whole number from `minimum` to `maximum`. */
export function integer(minimum: number, maximum: number, text: SettingText & { default?: number }) {
  return Type.Integer({ ...text, minimum, maximum });
}

/** `1`/`true` or `0`/`false`; off when unset. */
export function flag(text: SettingText) {
  return Type.Boolean({ default: false, ...text });
}

/** The OpenTelemetry specification's boolean: `true` in any case is on, anything else off. */
export function otelFlag(text: SettingText) {
  return Type.Boolean({
    default: false,
    shownDefault: "—",
    expected: "`true` (any case) or anything else",
    lenient: true,
    ...text,
  });
}

/** One of `values`. */
export function oneOf<const T extends readonly string[]>(
  values: T,
  text: SettingText & { default?: T[number] },
) {
  return Type.Union(
    values.map((value) => Type.Literal(value)),
    text,
  ) as TUnion<TLiteral<T[number]>[]>;
}

/** Free text, or text of a `pattern`/`format` that `expected` words for a reader. */
export function text(options: SettingText & { default?: string; pattern?: string; format?: string }) {
  return Type.String(options);
}

/** An http(s) URL; a trailing slash is dropped. */
export function httpUrl(options: SettingText) {
  return Type.String({ expected: "an http(s) URL", ...options, format: "http-url" });
}

/** A setting that may be left unset (no default, or one worked out from others). */
export const optional = Type.Optional;

/** The text of what `schema` accepts, as the docs and the errors word it. */
export function accepted(schema: TSchema): string {
  if (schema.expected) return schema.expected;
  switch (schema[Kind]) {
    case "Integer":
      return `a whole number from ${schema.minimum} to ${schema.maximum}`;
    case "Number":
      return `a number from ${schema.minimum} to ${schema.maximum}`;
    case "Boolean":
      return "1/true or 0/false";
    case "Union":
      return `one of ${literals(schema).join(", ")}`;
    default:
      return "any text";
  }
}

/** The values of a union of literals. */
export function literals(schema: TSchema): string[] {
  return (schema.anyOf as { const: string }[]).map((member) => member.const);
}

/** `raw` as the value `schema` describes, or `undefined` where it cannot be one. */
function decode(schema: TSchema, raw: string): unknown {
  switch (schema[Kind]) {
    case "Integer":
      return /^\d+$/.test(raw) ? Number(raw) : undefined;
    case "Number":
      return /^(\d+|\d*\.\d+)$/.test(raw) ? Number(raw) : undefined;
    case "Boolean":
      if (schema.lenient) return raw.toLowerCase() === "true";
      return raw === "1" || raw === "true" ? true : raw === "0" || raw === "false" ? false : undefined;
    case "String":
      return schema.format === "http-url" ? raw.replace(/\/+$/, "") : raw;
    default:
      return raw;
  }
}

/**
 * Reads every variable `schema` names from `env`, once: unset or blank takes
 * the default (or stays undefined); anything else must decode and pass the
 * schema, or a ConfigError names the variable and what it must be.
 */
export function parseEnv<T extends TObject>(schema: T, env: Env): Static<T> {
  const settings: Record<string, unknown> = {};
  for (const [key, property] of Object.entries(schema.properties)) {
    const raw = env[key]?.trim();
    if (!raw) {
      if (property.default !== undefined) settings[key] = property.default;
      continue;
    }
    const value = decode(property, raw);
    if (value === undefined || !Value.Check(property, value)) {
      throw new ConfigError(`${key} must be ${accepted(property)}${property.secret ? "" : `, got "${raw}"`}`);
    }
    settings[key] = value;
  }
  return settings as Static<T>;
}
