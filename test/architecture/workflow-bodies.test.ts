/**
 * A workflow body is replayed: on every resume, and on another worker after
 * a crash, it runs again from the top and must take the same steps. So it
 * reads the clock, randomness and the environment only through `ctx`
 * (`ctx.date.now()`, `ctx.math.random()`, its arguments) or inside a step
 * (`ctx.run(...)`, whose result is recorded). This test reads every
 * generator in the source and fails naming the function and the line of any
 * other read.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "../..");
/** Where durable functions are written. */
const FOLDERS = ["workers", "src"];

/** What a body may not read outside a step. */
const FORBIDDEN: { pattern: RegExp; what: string }[] = [
  { pattern: /\bprocess\.env\b/, what: "process.env" },
  { pattern: /\bDate\.now\s*\(/, what: "Date.now()" },
  { pattern: /\bnew\s+Date\s*\(/, what: "new Date()" },
  { pattern: /\bMath\.random\s*\(/, what: "Math.random()" },
  { pattern: /\bperformance\.now\s*\(/, what: "performance.now()" },
];

/** `source` with comments and string contents blanked (same length, so offsets and lines stay). */
function blankCommentsAndStrings(source: string): string {
  return source.replace(/\/\*[\s\S]*?\*\/|\/\/[^\n]*|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'/g, (m) =>
    m.replace(/[^\n]/g, " "),
  );
}

/** The index just past the bracket that closes the one at `open`. */
function closing(text: string, open: number): number {
  const pairs: Record<string, string> = { "(": ")", "{": "}", "[": "]" };
  const stack: string[] = [];
  for (let i = open; i < text.length; i++) {
    const c = text[i] as string;
    if (c in pairs) stack.push(pairs[c] as string);
    else if (c === stack.at(-1)) {
      stack.pop();
      if (stack.length === 0) return i + 1;
    }
  }
  return text.length;
}

/** The reads a workflow body makes outside its steps, each with the line it is on. */
function bodyReads(source: string): { fn: string; line: number; what: string }[] {
  const text = blankCommentsAndStrings(source);
  const found: { fn: string; line: number; what: string }[] = [];
  for (const generator of text.matchAll(/function\s*\*\s*(\w*)\s*\(/g)) {
    const start = generator.index as number;
    const bodyOpen = text.indexOf("{", closing(text, start + generator[0].length - 1));
    const bodyEnd = closing(text, bodyOpen);
    // Steps run once and are recorded: what they read is theirs to read.
    let body = text.slice(bodyOpen, bodyEnd);
    for (const step of [...body.matchAll(/\bctx\.(?:run|beginRun)\s*\(/g)].reverse()) {
      const open = (step.index as number) + step[0].length - 1;
      const end = closing(body, open);
      body = body.slice(0, open) + body.slice(open, end).replace(/[^\n]/g, " ") + body.slice(end);
    }
    const name = generator[1] || "(anonymous)";
    for (const { pattern, what } of FORBIDDEN) {
      const global = new RegExp(pattern.source, "g");
      for (const hit of body.matchAll(global)) {
        const offset = bodyOpen + (hit.index as number);
        found.push({ fn: name, line: text.slice(0, offset).split("\n").length, what });
      }
    }
  }
  return found.sort((a, b) => a.line - b.line);
}

function sourceFiles(folder: string): string[] {
  return readdirSync(folder, { withFileTypes: true }).flatMap((entry) => {
    const path = join(folder, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts") ? [path] : [];
  });
}

describe("workflow bodies read the clock, randomness and the environment only through ctx", () => {
  test("no generator in workers/ or src/ reads process.env, Date.now(), new Date(), Math.random() or performance.now() outside a step", () => {
    const files = FOLDERS.flatMap((folder) => sourceFiles(join(ROOT, folder)));
    // Not an empty check: the workflows of every group are generators it reads (process_order, approve_then_ship, compute_quote, place_order, …).
    const generators = files.flatMap((file) => [...readFileSync(file, "utf8").matchAll(/function\s*\*/g)]);
    expect(generators.length).toBeGreaterThanOrEqual(4);
    const reads = files.flatMap((file) =>
      bodyReads(readFileSync(file, "utf8")).map(
        (r) => `${relative(ROOT, file)}:${r.line} ${r.fn}: ${r.what}`,
      ),
    );
    expect(reads).toEqual([]);
  });

  test("the check finds such a read in a body, and leaves one inside a step alone", () => {
    const source = [
      "register(resonate, Orders.example, function* example(ctx: Context, id: string) {",
      "  const stamped = yield* ctx.run(() => ({ at: Date.now(), env: process.env.X }));",
      "  // Date.now() in a comment is no read",
      '  const label = "Math.random()";',
      "  if (Date.now() > 0) yield* ctx.sleep(1);",
      "  const pick = Math.random();",
      "  return { stamped, label, pick, region: process.env.REGION };",
      "});",
    ].join("\n");
    expect(bodyReads(source)).toEqual([
      { fn: "example", line: 5, what: "Date.now()" },
      { fn: "example", line: 6, what: "Math.random()" },
      { fn: "example", line: 7, what: "process.env" },
    ]);
  });
});
