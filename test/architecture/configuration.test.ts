/**
 * docs/configuration.md names every environment variable that the service
 * (`core/`, `src/`, `workers/`) and `npm start` (`launcher/`) read, and its
 * defaults are the ones `core/config.ts` applies: a setting added to the
 * code and not to the page, or a default changed on one side only, fails
 * here. (The harness's own variables, such as `DEBUG` or the chaos
 * preload's, are its tools' and documented with them.)
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { DEFAULTS } from "../../core/config.ts";

const ROOT = resolve(import.meta.dir, "../..");

/** Every way the code reads a variable: `env.X`, `env["X"]`, and the config module's `int(env, "X", …)` and kin. */
const READS =
  /\benv(?:\.([A-Z][A-Z0-9_]+)|\[\s*"([A-Z][A-Z0-9_]+)"\s*\])|\b(?:int|flag|url|pid)\(env, "([A-Z][A-Z0-9_]+)"/g;

/** The variables `code` reads. */
export function variablesRead(code: string): string[] {
  return [...code.matchAll(READS)].map((m) => m[1] ?? m[2] ?? m[3] ?? "");
}

/** The variables the page's tables name in their first column, with that row's default column. */
export function documented(page: string): Map<string, string> {
  const rows = new Map<string, string>();
  for (const line of page.split("\n")) {
    const [, first, defaults] = /^\| (.+?) \| (.*?) \|/.exec(line) ?? [];
    if (!first || !defaults) continue;
    for (const [, name] of first.matchAll(/`([A-Z][A-Z0-9_]+)`/g)) rows.set(name as string, defaults);
  }
  return rows;
}

const sources = ["core", "src", "workers", "launcher"].flatMap((folder) =>
  [...new Bun.Glob(`${folder}/**/*.ts`).scanSync({ cwd: ROOT })].map((file) => join(ROOT, file)),
);
const page = documented(readFileSync(join(ROOT, "docs/configuration.md"), "utf8"));

describe("docs/configuration.md", () => {
  test("the checker finds each way of reading a variable, and each name of a table's first column", () => {
    expect(
      variablesRead(
        `env.PORT; env["RESONATE_URL"]; int(env, "QUOTE_TIMEOUT_MS", 1); process.env.EXIT_WITH_PARENT`,
      ),
    ).toEqual(["PORT", "RESONATE_URL", "QUOTE_TIMEOUT_MS", "EXIT_WITH_PARENT"]);
    expect([...documented("| `A_B`, `CD` | `1` | x |\n| not a row\n").entries()]).toEqual([
      ["A_B", "`1`"],
      ["CD", "`1`"],
    ]);
  });

  test("names every variable the service and npm start read", () => {
    const read = new Set(sources.flatMap((file) => variablesRead(readFileSync(file, "utf8"))));
    expect([...read].filter((name) => !page.has(name)).sort()).toEqual([]);
  });

  test("gives each default of core/config.ts as the code applies it", () => {
    // The OTEL_BSP_* defaults are the specification's, listed with their meaning in observability.md.
    const shown = Object.entries(DEFAULTS).filter(([name]) => !name.startsWith("OTEL_"));
    const wrong = shown
      .filter(([name, value]) => !page.get(name)?.includes(`\`${value}\``))
      .map(([name, value]) => `${name}: code ${value}, page ${page.get(name)}`);
    expect(wrong).toEqual([]);
  });
});
