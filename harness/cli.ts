import { parseArgs } from "node:util";

/** One flag of a harness command line. */
export type FlagSpec =
  | { type: "string"; default?: string }
  | { type: "boolean" }
  | {
      type: "number";
      default?: number;
      min?: number;
      max?: number;
      /** Refuse a fraction. */
      integer?: boolean;
      /** Named in the message that refuses a fraction: "a whole number of <unit> ≥ …". */
      unit?: string;
      /** What the message that refuses a value says is expected, whatever was wrong with it: "a positive number of bytes". */
      expected?: string;
    }
  | { type: "enum"; values: readonly string[]; default?: string };

type FlagValue<F extends FlagSpec> = F extends { type: "boolean" }
  ? boolean
  : F extends { type: "number" }
    ? number
    : F extends { type: "enum"; values: readonly (infer V)[] }
      ? V
      : string;

/** The parsed flags: a flag with a default (and a boolean, false by default) is always there. */
export type Flags<S extends Record<string, FlagSpec>> = {
  [K in keyof S]: S[K] extends { type: "boolean" } | { default: unknown }
    ? FlagValue<S[K]>
    : FlagValue<S[K]> | undefined;
};

export interface CommandLine {
  /** The name that starts every message, e.g. `load`. */
  tool: string;
  /** One line of how to run it, e.g. `npm run load -- [flags]`. */
  usage: string;
  /** Default: this process's arguments after the script. */
  args?: string[];
  /** Take arguments that are not flags. Default false. */
  positionals?: boolean;
}

export interface ParsedCommandLine<S extends Record<string, FlagSpec>> {
  values: Flags<S>;
  positionals: string[];
  /** Prints `<tool>: <message>` and how to run the tool, and exits 2: for the tool's own checks of its flags. */
  fail(message: string): never;
}

function expectedNumber(spec: Extract<FlagSpec, { type: "number" }>, whole: boolean): string {
  if (spec.expected) return spec.expected;
  const { min, max } = spec;
  const bounds =
    min !== undefined && max !== undefined
      ? ` from ${min} to ${max}`
      : min !== undefined
        ? ` ≥ ${min}`
        : max !== undefined
          ? ` ≤ ${max}`
          : "";
  return whole ? `a whole number${spec.unit ? ` of ${spec.unit}` : ""}${bounds}` : `a number${bounds}`;
}

function helpText(cli: CommandLine, spec: Record<string, FlagSpec>): string {
  const rows = Object.entries(spec).map(([name, flag]) => {
    const value =
      flag.type === "boolean" ? "" : flag.type === "enum" ? ` <${flag.values.join("|")}>` : ` <${flag.type}>`;
    const fallback = "default" in flag && flag.default !== undefined ? `  (default ${flag.default})` : "";
    return `  --${name}${value}${fallback}`;
  });
  return [`usage: ${cli.usage}`, ...(rows.length > 0 ? ["flags:", ...rows] : [])].join("\n");
}

/**
 * Parses a harness tool's command line with `node:util`'s `parseArgs`
 * (strict: an unknown flag is an error), checks numbers and choices, and
 * applies defaults. A bad command line prints `<tool>: <what is wrong>` and
 * the usage line to stderr and exits 2; `--help` prints the flags and
 * exits 0.
 *
 *   const { values, fail } = parseFlags({ runs: { type: "number", min: 1, default: 1 } },
 *     { tool: "load", usage: "npm run load -- [flags]" });
 */
export function parseFlags<const S extends Record<string, FlagSpec>>(
  spec: S,
  cli: CommandLine,
): ParsedCommandLine<S> {
  const fail = (message: string): never => {
    const hint = Object.keys(spec).length > 0 ? "   (--help lists the flags)" : "";
    console.error(`${cli.tool}: ${message}\nusage: ${cli.usage}${hint}`);
    process.exit(2);
  };
  const options = Object.fromEntries(
    Object.entries(spec).map(([name, flag]) => [
      name,
      { type: flag.type === "boolean" ? ("boolean" as const) : ("string" as const) },
    ]),
  );
  let parsed: { values: Record<string, string | boolean | undefined>; positionals: string[] };
  try {
    parsed = parseArgs({
      args: cli.args ?? process.argv.slice(2),
      options: { help: { type: "boolean", short: "h" }, ...options },
      allowPositionals: cli.positionals ?? false,
      strict: true,
    });
  } catch (error) {
    return fail((error as Error).message);
  }
  if (parsed.values.help === true && !("help" in spec)) {
    console.log(helpText(cli, spec));
    process.exit(0);
  }

  const values: Record<string, unknown> = {};
  for (const [name, flag] of Object.entries(spec)) {
    const raw = parsed.values[name];
    if (flag.type === "boolean") {
      values[name] = raw === true;
      continue;
    }
    if (raw === undefined) {
      values[name] = flag.default;
      continue;
    }
    const text = String(raw);
    if (flag.type === "string") {
      values[name] = text;
    } else if (flag.type === "enum") {
      if (!flag.values.includes(text))
        fail(`--${name} must be one of ${flag.values.join(", ")}, got "${text}"`);
      values[name] = text;
    } else {
      const n = Number(text);
      const inRange =
        Number.isFinite(n) &&
        (flag.min === undefined || n >= flag.min) &&
        (flag.max === undefined || n <= flag.max);
      if (!inRange) fail(`--${name} must be ${expectedNumber(flag, false)}, got "${text}"`);
      if (flag.integer && !Number.isInteger(n))
        fail(`--${name} must be ${expectedNumber(flag, true)}, got "${text}"`);
      values[name] = n;
    }
  }
  return { values: values as Flags<S>, positionals: parsed.positionals, fail };
}
