/**
 * The console transcripts of a Markdown page, as commands and what each
 * printed, and the rules that compare a run's output with the page's:
 * `…` stands for text left out (a line of its own: any lines), and the
 * values that differ from run to run (ids, times, cursors) match any value
 * of their kind, the same one wherever the page repeats it.
 */

/** One `$ ` command of a transcript and the lines under it. */
export interface Step {
  /** The command, its continuation lines joined. */
  command: string;
  /** What the page shows it printed (with what background commands printed meanwhile). */
  expected: string;
  /** Ends with `&`: runs on while the next commands run. */
  background: boolean;
  /** Its line in the page. */
  line: number;
}

/** The steps of every ```console block of `markdown`, in order. */
export function transcriptSteps(markdown: string): Step[] {
  const steps: (Step & { output: string[] })[] = [];
  let inBlock = false;
  let current: (typeof steps)[number] | undefined;
  let continues = false;
  markdown.split("\n").forEach((text, index) => {
    if (!inBlock) {
      inBlock = text.trim() === "```console";
      return;
    }
    if (text.trim() === "```") {
      inBlock = false;
      current = undefined;
    } else if (current && continues) {
      current.command += `\n${text}`;
      continues = text.endsWith("\\");
    } else if (text.startsWith("$ ")) {
      current = { command: text.slice(2), expected: "", background: false, line: index + 1, output: [] };
      steps.push(current);
      continues = text.endsWith("\\");
    } else {
      current?.output.push(text);
    }
    if (current && !continues) current.background = /\s&\s*(#.*)?$/.test(current.command);
  });
  return steps.map(({ output, ...step }) => ({ ...step, expected: normalize(output.join("\n")) }));
}

/** The kinds of value that differ from run to run, each as a pattern. */
export const VOLATILE: Record<string, string> = {
  time: "\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.\\d{3}Z",
  cursor: "eyJ[A-Za-z0-9_-]+=*",
  hash: "[0-9a-f]{32}",
  charge: "ch_[0-9a-f]{20}",
  tracking: "1Z[0-9A-F]{16}",
  epochMs: "1[7-9]\\d{11}",
};
const ANY_VOLATILE = new RegExp(Object.values(VOLATILE).join("|"), "g");
const kindOf = (token: string) =>
  Object.values(VOLATILE).find((pattern) => new RegExp(`^(?:${pattern})$`).test(token)) as string;

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * Whether `actual` is what `expected` shows, given the values the page's
 * earlier tokens stood for (`bound`); on a match, the tokens this step
 * shows for the first time are added to `bound`.
 */
export function matchOutput(expected: string, actual: string, bound: Map<string, string>): boolean {
  const tokens: string[] = [];
  let pattern = "";
  const lines = expected.split("\n");
  lines.forEach((line, index) => {
    const last = index === lines.length - 1;
    if (line === "…") {
      pattern += "(?:[^\\n]*\\n)*?";
      return;
    }
    let at = 0;
    for (const match of line.matchAll(ANY_VOLATILE)) {
      pattern += literal(line.slice(at, match.index));
      const token = match[0];
      const known = bound.get(token);
      if (known !== undefined) pattern += escapeRegExp(known);
      else if (tokens.includes(token)) pattern += `\\${tokens.indexOf(token) + 1}`;
      else {
        tokens.push(token);
        pattern += `(${kindOf(token)})`;
      }
      at = match.index + token.length;
    }
    pattern += literal(line.slice(at)) + (last ? "" : "\\n");
  });
  const found = new RegExp(`^${pattern}$`).exec(normalize(actual));
  if (!found) return false;
  for (const [index, token] of tokens.entries()) bound.set(token, found[index + 1] as string);
  return true;
}

/** A line's text, `…` inside it matching any text of that line. */
const literal = (text: string) => text.split("…").map(escapeRegExp).join("[^\\n]*?");

/** Output as the page shows it: no carriage returns, no trailing space or blank lines. */
export const normalize = (output: string) => output.replaceAll("\r", "").replace(/\s+$/, "");

/** `command` with the values the page's tokens stood for in this run. */
export function substitute(command: string, bound: Map<string, string>): string {
  let out = command;
  for (const [token, value] of bound) out = out.replaceAll(token, value);
  return out;
}
