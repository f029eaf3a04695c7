/**
 * A Python tool from PyPI, pinned with hashes in a requirements file beside
 * the tool that uses it, installed into a virtualenv under `.cache/` on
 * first use and again whenever that file changes. `npm run test:contract`
 * (schemathesis) and `npm run traces` (Phoenix) use it; nothing in CI does.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";

export interface PythonTool {
  /** What it is called in the lines this writes (`schemathesis`). */
  name: string;
  /** The version the requirements pin, checked after installing. */
  version: string;
  /** The Python that makes the virtualenv. */
  python: string;
  /** Where the virtualenv goes; not committed. */
  venv: string;
  /** The requirements file, every package pinned with its hashes. */
  requirements: string;
  /** The command, in the virtualenv, that prints the installed version (its output must end with it). */
  versionCommand: string[];
}

/** Runs a command to its end and resolves with its output; rejects with that output if it fails. */
export type Run = (cmd: string[]) => Promise<string>;

/** `Run`, telling `started` of each child as it starts (so a stop can stop it). */
export async function runToEnd(
  cmd: string[],
  started: (child: ReturnType<typeof Bun.spawn>) => void,
): Promise<string> {
  const child = Bun.spawn({ cmd, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  started(child);
  const [out, err, code] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  if (code !== 0) throw new Error(`${cmd.join(" ")} exited with ${code}:\n${out}${err}`);
  return out;
}

/**
 * Makes `tool`'s virtualenv and installs its requirements, unless it is
 * there from the same requirements file (a hash of it is kept in the
 * virtualenv, written last, so an install cut short is made again).
 */
export async function ensurePythonTool(
  tool: PythonTool,
  run: Run,
  log: (line: string) => void,
): Promise<void> {
  const stamp = join(tool.venv, ".requirements-sha256");
  const wanted = createHash("sha256").update(readFileSync(tool.requirements)).digest("hex");
  if (existsSync(stamp) && readFileSync(stamp, "utf8").trim() === wanted) {
    log(`${tool.name} ${tool.version} is installed in ${tool.venv}`);
    return;
  }
  log(`installing ${tool.name} ${tool.version} in ${tool.venv}`);
  mkdirSync(dirname(tool.venv), { recursive: true });
  await run([tool.python, "-m", "venv", "--clear", tool.venv]);
  await run([
    join(tool.venv, "bin", "python"),
    "-m",
    "pip",
    "install",
    "--quiet",
    "--disable-pip-version-check",
    "--no-input",
    "--require-hashes",
    "--no-deps",
    "-r",
    tool.requirements,
  ]);
  const [command = "", ...args] = tool.versionCommand;
  const version = (await run([join(tool.venv, "bin", command), ...args])).trim();
  if (!version.endsWith(tool.version))
    throw new Error(`expected ${tool.name} ${tool.version}, the virtualenv has "${version}"`);
  writeFileSync(stamp, `${wanted}\n`);
}
