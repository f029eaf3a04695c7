import type { Resonate, Value } from "@resonatehq/sdk";

/** What the SDK's codec asks of its JSON encoder: a value to `{headers, data}` (base64 of UTF-8 JSON) and back. */
export interface JsonEncoder {
  encode(value: unknown): Value;
  decode(value: Value | undefined): unknown;
}

/** Text the SDK's reviver could act on: its markers, or an escape that could spell one. */
const REVIVABLE = /__INF__|__NEG_INF__|__type|\\u/;
/** Base64 that `atob` and `Buffer` read alike: padded, no whitespace, nothing outside the alphabet. */
const CANONICAL_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
/** Deeper values go the SDK's way, which also reports a cycle as it does. */
const MAX_DEPTH = 64;
const utf8 = new TextDecoder();

/**
 * True when `JSON.stringify` with the SDK's replacer gives the same text as
 * without it: no ±Infinity and no Error anywhere, and nothing with a
 * `toJSON` whose result would have to be looked at too.
 */
function plain(value: unknown, depth: number): boolean {
  if (typeof value === "number")
    return value !== Number.POSITIVE_INFINITY && value !== Number.NEGATIVE_INFINITY;
  if (typeof value !== "object" || value === null) return true;
  if (depth > MAX_DEPTH || value instanceof Error) return false;
  if (typeof (value as { toJSON?: unknown }).toJSON === "function") return false;
  if (Array.isArray(value)) {
    for (const item of value) if (!plain(item, depth + 1)) return false;
    return true;
  }
  for (const key of Object.keys(value)) {
    if (!plain((value as Record<string, unknown>)[key], depth + 1)) return false;
  }
  return true;
}

/**
 * The SDK's JSON encoding, byte for byte, without its per-value callbacks
 * where they cannot change the result. The SDK stringifies with a replacer
 * (±Infinity and errors get markers) and parses with a reviver, and turns
 * text into base64 one character at a time; on small payloads that is most
 * of what encoding costs. Here a value with neither infinities nor errors
 * is stringified directly, text without a marker is parsed directly, and
 * base64 goes through `Buffer`. Anything else, and anything that fails, is
 * handed to the SDK's own encoder, so its results and its errors are
 * unchanged.
 */
export class FastJsonEncoder implements JsonEncoder {
  constructor(readonly sdk: JsonEncoder) {}

  encode(value: unknown): Value {
    if (value === undefined || !plain(value, 0)) return this.sdk.encode(value);
    let json: string | undefined;
    try {
      json = JSON.stringify(value);
    } catch {
      return this.sdk.encode(value);
    }
    if (json === undefined) return this.sdk.encode(value);
    return { headers: {}, data: Buffer.from(json, "utf8").toString("base64") };
  }

  decode(value: Value | undefined): unknown {
    const data: unknown = value?.data;
    if (typeof data !== "string" || data === "" || !CANONICAL_BASE64.test(data))
      return this.sdk.decode(value);
    const text = utf8.decode(Buffer.from(data, "base64"));
    if (REVIVABLE.test(text)) return this.sdk.decode(value);
    try {
      return JSON.parse(text);
    } catch {
      return this.sdk.decode(value);
    }
  }
}

/**
 * Puts `FastJsonEncoder` in front of the client's own encoder. The SDK has
 * no option for it, so this reaches into its codec (the field `encoder` of
 * the pinned version); when that is not there, the client is left as it
 * is and false is returned.
 */
export function useFastEncoder(resonate: Resonate): boolean {
  const codec = (resonate as unknown as { codec?: { encoder?: Partial<JsonEncoder> } }).codec;
  const sdk = codec?.encoder;
  if (!codec || typeof sdk?.encode !== "function" || typeof sdk.decode !== "function") return false;
  if (sdk instanceof FastJsonEncoder) return true;
  codec.encoder = new FastJsonEncoder(sdk as JsonEncoder);
  return true;
}
