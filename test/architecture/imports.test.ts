/**
 * Which folder may import which. `core/` is what the API, the workers and
 * the harness share (contracts, config, the Resonate adapter,
 * observability) and imports nothing else; `src/` is the API and
 * `workers/` the workers, each on top of `core/` and neither importing the
 * other, but for `src/boot.ts`, the composition root of co-located mode,
 * which registers the workers' functions in the API process. None of them
 * imports the harness, the dev launcher (`launcher/`, what `npm start`
 * runs, on top of the harness) or the tests, and no files import each
 * other in a loop. And every durable function is named in one place,
 * `core/functions.ts`: nowhere else writes a function's name as a string.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { Business, Db, Earlier, Orders, Pricing } from "../../core/functions.ts";

const ROOT = resolve(import.meta.dir, "../..");

/** Folders a file in each top folder may import from (its own included). */
const ALLOWED: Record<string, string[]> = {
  core: ["core"],
  src: ["src", "core"],
  workers: ["workers", "core"],
  harness: ["harness", "core", "src", "workers"],
  launcher: ["launcher", "harness", "core", "src", "workers"],
  test: ["test", "launcher", "harness", "core", "src", "workers"],
};
/** The one file allowed past its folder's rule, and what it may reach. */
const COMPOSITION_ROOTS: Record<string, string[]> = { "src/boot.ts": ["workers"] };

const IMPORT =
  /(?:^|[\s;])(?:import|export)\b[^'"`;]*?\bfrom\s*["']([^"']+)["']|\bimport\s*\(\s*["']([^"']+)["']\s*\)|^\s*import\s+["']([^"']+)["']/gm;

/** The relative specifiers a module imports, type-only imports and re-exports included. */
export function importsOf(code: string): string[] {
  return [...code.matchAll(IMPORT)]
    .map((m) => m[1] ?? m[2] ?? m[3] ?? "")
    .filter((spec) => spec.startsWith("."));
}

/** The imports of `file` (repo-relative) that break the direction rules, as "file → target". */
export function violations(file: string, code: string): string[] {
  const top = file.split("/")[0] as string;
  const allowed = [...(ALLOWED[top] ?? []), ...(COMPOSITION_ROOTS[file] ?? [])];
  return importsOf(code)
    .map((spec) => relative(ROOT, resolve(ROOT, dirname(file), spec)))
    .filter((target) => !target.startsWith("node_modules/"))
    .filter((target) => !allowed.includes(target.split("/")[0] as string))
    .map((target) => `${file} → ${target}`);
}

const sources = (folder: string) =>
  [...new Bun.Glob(`${folder}/**/*.ts`).scanSync({ cwd: ROOT })].filter((f) => !f.includes("node_modules"));

describe("import direction", () => {
  test("the checker finds imports of every form, type-only ones too", () => {
    const code = [
      `import type { Quote } from "../../workers/pricing.ts";`,
      `import { a,\n  b } from "../x.ts";`,
      `export { c } from "./y.ts";`,
      `const m = await import("../../harness/z.ts");`,
      `import "./side-effect.ts";`,
      `import { Elysia } from "elysia";`,
    ].join("\n");
    expect(importsOf(code)).toEqual([
      "../../workers/pricing.ts",
      "../x.ts",
      "./y.ts",
      "../../harness/z.ts",
      "./side-effect.ts",
    ]);
  });

  test("a src → workers import outside the composition root is a violation", () => {
    expect(
      violations("src/quotes/service.ts", `import type { Quote } from "../../workers/pricing.ts";`),
    ).toEqual(["src/quotes/service.ts → workers/pricing.ts"]);
    expect(violations("src/boot.ts", `import { registerGroup } from "../workers/register.ts";`)).toEqual([]);
    expect(violations("workers/db.ts", `import { x } from "../harness/process.ts";`)).toEqual([
      "workers/db.ts → harness/process.ts",
    ]);
    expect(violations("src/app.ts", `import { x } from "../test/support/http.ts";`)).toEqual([
      "src/app.ts → test/support/http.ts",
    ]);
  });

  test("core/ reaching into the API or the workers, and the workers into the API, are violations", () => {
    expect(violations("core/config.ts", `import { x } from "../src/errors.ts";`)).toEqual([
      "core/config.ts → src/errors.ts",
    ]);
    expect(violations("core/resonate/network.ts", `import { x } from "../../workers/db.ts";`)).toEqual([
      "core/resonate/network.ts → workers/db.ts",
    ]);
    expect(violations("workers/db.ts", `import { x } from "../src/deps.ts";`)).toEqual([
      "workers/db.ts → src/deps.ts",
    ]);
    expect(violations("workers/db.ts", `import { x } from "../core/functions.ts";`)).toEqual([]);
  });

  test("core/ imports only core/; src/ and workers/ only themselves and core/ (but the composition root); neither the harness or the tests", () => {
    const found = ["core", "src", "workers", "harness", "launcher", "test"]
      .flatMap(sources)
      .flatMap((file) => violations(file, readFileSync(join(ROOT, file), "utf8")));
    expect(found).toEqual([]);
  });
});

/**
 * The loops in the import graph of `files` (repo-relative), each as the
 * files it runs through, from the first one found back to itself. A
 * type-only import counts: it ties the two files as much as any.
 */
export function circles(files: Record<string, string>): string[][] {
  const edges = new Map(
    Object.entries(files).map(([file, code]) => [
      file,
      importsOf(code)
        .map((spec) => relative(ROOT, resolve(ROOT, dirname(file), spec)))
        .filter((target) => target in files),
    ]),
  );
  const found: string[][] = [];
  const done = new Set<string>();
  const visit = (file: string, path: string[]) => {
    const at = path.indexOf(file);
    if (at !== -1) {
      found.push([...path.slice(at), file]);
      return;
    }
    if (done.has(file)) return;
    for (const next of edges.get(file) ?? []) visit(next, [...path, file]);
    done.add(file);
  };
  for (const file of edges.keys()) visit(file, []);
  return found;
}

describe("import circles", () => {
  test("the checker finds a loop through type-only imports, and none in a chain", () => {
    const a = `import type { B } from "./b.ts";`;
    expect(circles({ "src/a.ts": a, "src/b.ts": `import { a } from "./a.ts";` })).toEqual([
      ["src/a.ts", "src/b.ts", "src/a.ts"],
    ]);
    expect(circles({ "src/a.ts": a, "src/b.ts": `import { c } from "./c.ts";`, "src/c.ts": "" })).toEqual([]);
  });

  test("no files of core/, src/, workers/ or the harness import each other in a loop", () => {
    const files = Object.fromEntries(
      ["src", "workers", "harness"]
        .flatMap(sources)
        .map((file) => [file, readFileSync(join(ROOT, file), "utf8")]),
    );
    expect(circles(files)).toEqual([]);
  });
});

describe("durable function names", () => {
  const contracts = [Pricing, Orders, Business, Db, Earlier].flatMap((group) => Object.values(group));
  const names = [...new Set(contracts.map((fn) => fn.name))];

  test("every contract has its own name and version", () => {
    const keys = contracts.map((fn) => `${fn.name}@${fn.version}`);
    expect(new Set(keys).size).toBe(keys.length);
    // An earlier version is of a function the service still declares.
    for (const fn of Object.values(Earlier))
      expect(contracts.some((c) => c.name === fn.name && c.version > fn.version)).toBe(true);
  });

  test("no file but core/functions.ts writes a durable function's name as a string", () => {
    const quoted = new RegExp(`["'](${names.join("|")})["']`);
    const found = ["core", "src", "workers", "harness", "launcher", "test"]
      .flatMap(sources)
      .filter((file) => file !== "core/functions.ts")
      .filter((file) => quoted.test(readFileSync(join(ROOT, file), "utf8")));
    expect(found).toEqual([]);
  });
});
