/**
 * The README's and docs/api.md's transcripts, run: for each page, `npm
 * start` (the launcher, every worker group, the server `RESONATE_BIN` names
 * or ours, the sandbox, with the settings the page names) in a private data folder, then
 * each `$ ` command of the page in bash, in order, from the repository's
 * root, its output compared with the page's (test/support/transcripts.ts
 * says how: `…` leaves text out; ids, times and cursors match any value of
 * their kind and are carried into the commands that reuse them).
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { freePort, spawnProcess, waitFor } from "../../harness/index.ts";
import { E2E_TIMEOUT } from "../support/processes.ts";
import { TEST_SECRET } from "../support/secrets.ts";
import { tempDir } from "../support/temp.ts";
import { matchOutput, normalize, type Step, substitute, transcriptSteps } from "../support/transcripts.ts";

const ROOT = resolve(import.meta.dir, "../..");

/** Each page: the settings its examples say they ran with, and its commands with a placeholder that a reader fills in. */
const PAGES: Record<string, { env: Record<string, string>; placeholders: string[] }> = {
  "README.md": { env: {}, placeholders: [] },
  "docs/api.md": {
    env: { BENCH_ROUTES: "1", PRICING_DELAY_MS: "300" },
    placeholders: [
      "curl -s <worker metrics url> | grep '^durable_function_ends_total'     # METRICS_PORT=0 on the workers",
      "curl -s <server metrics url> | grep '^resonate_messages_total'       # --observability-metrics-port",
    ],
  },
};

/** A command the page shows with a placeholder (`<worker metrics url>`): the reader fills it in, the test cannot. */
const PLACEHOLDER = /<[a-z ]+>/;
/** A line that only sets a shell variable for the commands after it. */
const ASSIGNMENT = /^[A-Z_]+="[^"]*"$/;

/** What one command printed so far (stdout, as the page shows it; stderr, for a failure's message), and a way to stop it. */
interface Running {
  text(): string;
  errors(): string;
  done: Promise<number>;
  kill(): void;
}

function run(script: string, env: Record<string, string>): Running {
  const out = { stdout: "", stderr: "" };
  const child = Bun.spawn(["bash", "-c", script], { cwd: ROOT, env, stdout: "pipe", stderr: "pipe" });
  const read = async (stream: ReadableStream<Uint8Array>, into: "stdout" | "stderr") => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) out[into] += decoder.decode(chunk, { stream: true });
  };
  const reading = Promise.all([read(child.stdout, "stdout"), read(child.stderr, "stderr")]);
  return {
    text: () => out.stdout,
    errors: () => out.stderr,
    done: Promise.all([child.exited, reading]).then(([code]) => code),
    kill: () => child.kill("SIGKILL"),
  };
}

describe("comparing a command's output with a page's", () => {
  test("`…` on a line of its own stands for any lines, inside a line for any text of it", () => {
    const bound = new Map<string, string>();
    expect(
      matchOutput('HTTP/1.1 200 OK\n…\n{"a":1,…}', 'HTTP/1.1 200 OK\nx: 1\ny: 2\n\n{"a":1,"b":2}\r\n', bound),
    ).toBe(true);
    expect(matchOutput('HTTP/1.1 200 OK\n{"a":1}', 'HTTP/1.1 200 OK\nx: 1\n{"a":1}', bound)).toBe(false);
    expect(matchOutput('{"a":1,…}', '{"a":2,"b":2}', bound)).toBe(false);
  });

  test("a run's own ids stand in for the page's, the same one wherever the page repeats it", () => {
    const bound = new Map<string, string>();
    const page = '{"charge_id":"ch_6e78c4fc84d84fe8813f","at":"2026-12-02T02:38:26.758Z"}';
    expect(
      matchOutput(page, '{"charge_id":"ch_0123456789abcdef0123","at":"2026-12-07T10:00:00.000Z"}', bound),
    ).toBe(true);
    expect(bound.get("ch_6e78c4fc84d84fe8813f")).toBe("ch_0123456789abcdef0123");
    expect(substitute("callback for ch_6e78c4fc84d84fe8813f", bound)).toBe(
      "callback for ch_0123456789abcdef0123",
    );
    // Bound, the page's id must be the run's: another one is a mismatch.
    expect(matchOutput('"ch_6e78c4fc84d84fe8813f"', '"ch_ffffffffffffffffffff"', bound)).toBe(false);
    expect(
      matchOutput(
        "ch_aaaaaaaaaaaaaaaaaaaa ch_aaaaaaaaaaaaaaaaaaaa",
        "ch_0000000000000000000a ch_0000000000000000000b",
        bound,
      ),
    ).toBe(false);
  });

  test("a page's commands, with continuation lines, the lines under each, and the ones that run on in the background", () => {
    const page = [
      "text",
      "```console",
      "$ a \\",
      "    b",
      "out 1",
      "",
      "out 2",
      "$ c &",
      "```",
      "$ not a command",
    ].join("\n");
    expect(transcriptSteps(page)).toEqual([
      { command: "a \\\n    b", expected: "out 1\n\nout 2", background: false, line: 3 },
      { command: "c &", expected: "", background: true, line: 8 },
    ]);
  });
});

for (const [name, { env: pageEnv, placeholders }] of Object.entries(PAGES)) {
  describe(name, () => {
    test(
      "each transcript prints what the page shows, run against npm start",
      async () => {
        const page = readFileSync(join(ROOT, name), "utf8");
        const steps = transcriptSteps(page);
        // Every command of the page is in a console block the parser read.
        expect(steps.length).toBe(page.match(/^\$ /gm)?.length ?? 0);
        using dataDir = tempDir("api-docs-");
        const port = freePort();
        const env = {
          DATA_DIR: dataDir.path,
          PORT: String(port),
          RESONATE_PORT: String(freePort()),
          SANDBOX_PORT: String(freePort()),
          WEBHOOK_SECRET: TEST_SECRET,
          ...pageEnv,
        };
        await using launcher = spawnProcess({
          name: "start",
          cmd: [process.execPath, join(ROOT, "launcher/main.ts")],
          env,
          readyLine: /^ready: API /,
          readyTimeoutMs: 30_000,
        });
        await launcher.ready;
        const shellEnv = {
          ...(process.env as Record<string, string>),
          ...env,
          PATH: `${dirname(process.execPath)}:${process.env.PATH}`,
        };
        const bound = new Map<string, string>();
        const prelude: string[] = [];
        const unrun: string[] = [];
        const background: Running[] = [];
        const seen = new Map<Running, number>();
        /** What the background commands printed since the last step took it. */
        const meanwhile = () => background.map((b) => b.text().slice(seen.get(b) ?? 0)).join("");
        const took = () => {
          for (const b of background) seen.set(b, b.text().length);
        };
        const mismatch = (step: Step, output: string, running: Running) =>
          new Error(
            `${name}:${step.line}: $ ${step.command}\n--- the page shows:\n${step.expected}\n--- it printed:\n${normalize(output)}\n--- and on stderr:\n${running.errors()}`,
          );
        try {
          for (const step of steps) {
            if (PLACEHOLDER.test(step.command)) {
              unrun.push(step.command);
              continue;
            }
            const command = substitute(step.command, bound)
              .replaceAll("localhost:3000", `127.0.0.1:${port}`)
              .replaceAll(".data/", `${dataDir.path}/`);
            if (ASSIGNMENT.test(command)) {
              prelude.push(command);
              continue;
            }
            const script = [
              ...prelude,
              step.background ? `exec ${command.replace(/&\s*(#.*)?$/, "")}` : command,
            ].join("\n");
            const running = run(script, shellEnv);
            let output = "";
            if (step.background) {
              background.push(running);
              seen.set(running, 0);
            } else {
              const limit = setTimeout(() => running.kill(), 30_000);
              await running.done;
              clearTimeout(limit);
              output = running.text();
            }
            // Background commands print as they go: wait, within a deadline, for the page's lines.
            await waitFor(() => matchOutput(step.expected, output + meanwhile(), bound), {
              timeout: 10_000,
              message: `${name}:${step.line}`,
            }).catch(() => {
              throw mismatch(step, output + meanwhile(), running);
            });
            took();
          }
        } finally {
          for (const b of background) b.kill();
        }
        expect(unrun).toEqual(placeholders);
      },
      E2E_TIMEOUT + 60_000,
    );
  });
}
