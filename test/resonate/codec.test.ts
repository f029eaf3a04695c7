import { describe, expect, test } from "bun:test";
import { Codec, type Context, Resonate, type Value } from "@resonatehq/sdk";
import { FastJsonEncoder, type JsonEncoder, useFastEncoder } from "../../core/resonate/codec.ts";

const sdk = (new Codec() as unknown as { encoder: JsonEncoder }).encoder;
const fast = new FastJsonEncoder(sdk);

class Custom {
  constructor(readonly n: number) {}
}

/** Values a durable function may take or return, with the ones the SDK marks specially. */
const VALUES: [string, unknown][] = [
  ["null", null],
  ["a number", 42.5],
  ["a string with every kind of text", 'plain, ünïcødé, 𝄞, \u0000\u001f, "quoted", \\'],
  ["a lone surrogate", "a\ud800b"],
  ["a quote", { sku: "sku-1", qty: 3, price_cents: 597, customer_id: null, tags: ["a", "b"] }],
  ["nested arrays with holes", [1, [2, [3]], new Array(2), undefined, () => 1]],
  ["NaN and -0", [Number.NaN, -0]],
  ["Infinity", Number.POSITIVE_INFINITY],
  ["-Infinity deep inside", { a: [{ b: Number.NEGATIVE_INFINITY }] }],
  ["an Error", new Error("boom")],
  ["an AggregateError", new AggregateError([new Error("one")], "many")],
  ["an Error inside", { ok: false, error: new TypeError("bad") }],
  ["a Date (toJSON)", { at: new Date(0) }],
  ["a class instance", new Custom(7)],
  ["a Map (no keys)", new Map([[1, 2]])],
  ["the marker strings as data", { s: "__INF__", t: "__NEG_INF__", __type: "other" }],
  ["deeper than the fast path goes", JSON.parse(`${"[".repeat(80)}1${"]".repeat(80)}`)],
  ["a string at the top", "just text"],
  ["a boolean", true],
];

/**
 * A decoded value as the SDK would send it again, so errors (decoded as new
 * objects) compare by name and message; an error whose payload had no stack
 * gets one where it was decoded, which differs by call site.
 */
const reencoded = (value: unknown) =>
  JSON.parse(Buffer.from(sdk.encode(value).data as string, "base64").toString("utf8"), (key, v) =>
    key === "stack" ? undefined : v,
  );

describe("FastJsonEncoder", () => {
  test.each(VALUES)("encodes %s exactly as the SDK does, and decodes it the same", (_, value) => {
    const mine = fast.encode(value);
    const theirs = sdk.encode(value);
    expect(JSON.stringify(mine)).toBe(JSON.stringify(theirs));
    const decoded = fast.decode(theirs);
    expect(reencoded(decoded)).toEqual(reencoded(sdk.decode(theirs)));
    if (value instanceof Error) expect(decoded).toBeInstanceOf(value.constructor as typeof Error);
  });

  test("undefined is empty data both ways", () => {
    expect(fast.encode(undefined)).toEqual(sdk.encode(undefined));
    expect(fast.decode({ data: "" })).toBeUndefined();
    expect(fast.decode(undefined)).toBeUndefined();
  });

  test("what the SDK cannot encode fails with the SDK's own error", () => {
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    for (const value of [10n, cycle]) {
      const theirs = (() => {
        try {
          sdk.encode(value);
        } catch (error) {
          return error;
        }
      })();
      expect(theirs).toBeDefined();
      expect(() => fast.encode(value)).toThrow(theirs as Error);
    }
  });

  const b64 = (text: string) => Buffer.from(text, "utf8").toString("base64");
  const decodeCases: [string, Value][] = [
    ["a marker spelled with an escape", { data: b64('{"\\u005f_type":"error","message":"escaped"}') }],
    ["an escaped Infinity marker", { data: b64('["\\u005f_INF__"]') }],
    ["text after a byte-order mark", { data: b64('\ufeff{"a":1}') }],
    [
      "bytes that are not UTF-8",
      { data: Buffer.from([0x5b, 0x22, 0xff, 0xfe, 0x22, 0x5d]).toString("base64") },
    ],
    ["base64 without padding", { data: b64('{"a":1}').replace(/=+$/, "") }],
    ["base64 with whitespace", { data: ` ${b64('{"a":1}')}\n` }],
  ];
  test.each(decodeCases)("decodes %s as the SDK does", (_, value) => {
    expect(reencoded(fast.decode(value))).toEqual(reencoded(sdk.decode(value)));
  });

  const badCases: [string, Value][] = [
    ["base64 with characters outside the alphabet", { data: "e30*" }],
    ["base64 of text that is not JSON", { data: b64("{not json") }],
  ];
  test.each(badCases)("fails on %s with the SDK's own error", (_, value) => {
    let theirs: unknown;
    try {
      sdk.decode(value);
    } catch (error) {
      theirs = error;
    }
    expect(theirs).toBeInstanceOf(Error);
    expect(() => fast.decode(value)).toThrow(theirs as Error);
  });
});

describe("useFastEncoder", () => {
  test("replaces the client's encoder once, and durable calls keep their values", async () => {
    const resonate = new Resonate({ group: "codec", pid: `codec-${crypto.randomUUID()}` });
    try {
      expect(useFastEncoder(resonate)).toBe(true);
      expect(useFastEncoder(resonate)).toBe(true);
      const encoder = (resonate as unknown as { codec: { encoder: unknown } }).codec.encoder;
      expect(encoder).toBeInstanceOf(FastJsonEncoder);
      expect((encoder as FastJsonEncoder).sdk).not.toBeInstanceOf(FastJsonEncoder);

      const extremes = (_ctx: Context) => [Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];
      resonate.register("echo", function* (ctx: Context, value: unknown) {
        return { value, extremes: yield* ctx.run(extremes) };
      });
      const input = { sku: "sku-1", qty: 2, note: "ünïcødé" };
      const result = await resonate.run(`codec-${crypto.randomUUID()}`, "echo", input);
      expect(result).toEqual({
        value: input,
        extremes: [Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY],
      });
    } finally {
      resonate.stop();
    }
  });

  test("leaves a client without the expected codec alone", () => {
    expect(useFastEncoder({} as Resonate)).toBe(false);
    expect(useFastEncoder({ codec: { encoder: {} } } as unknown as Resonate)).toBe(false);
  });
});
