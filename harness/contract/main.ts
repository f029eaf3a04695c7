/**
 * The published contract, tested from outside: schemathesis (PyPI, pinned
 * with hashes in requirements.txt beside this file) against /docs/json of
 * the whole system as `npm start` runs it (our Resonate server, the sandbox,
 * one worker process per group, the API), on ports the OS picks and in a
 * temporary data folder, so it runs beside an `npm start`.
 *
 *   npm run test:contract                          (or: bun harness/contract/main.ts)
 *   npm run test:contract -- --max-examples 50     (extra arguments go to `st run`)
 *
 * Every check, every phase (the stateful one in three runs: see PASSES), a fixed
 * seed and a bounded number of examples: the same test each time, in under
 * three minutes on two cores. What the API may answer beyond success is in
 * schemathesis.toml, the signing of the webhook requests in hooks.py. The
 * API checks its callers' tokens with the key pair startSystem keeps in the
 * data folder; this signs two with it (see CONTRACT_DEFAULTS.callers) and
 * gives them to schemathesis, which sends them as schemathesis.toml says. The
 * virtualenv is made once in .cache/contract/ and made again when
 * requirements.txt changes. Exits 0 when every run found nothing, else with
 * the first failing run's status; Ctrl-C or SIGTERM stops schemathesis and
 * the system.
 */
import { join, resolve } from "node:path";
import { exitWithParent } from "../../core/parent-process.ts";
import { API_AUTH_DEFAULTS } from "../api-auth.ts";
import { dieWithParent } from "../process.ts";
import { ensurePythonTool, type PythonTool, type Run, runToEnd } from "../python-tool.ts";
import { type System, startSystem } from "../system.ts";

const HERE = import.meta.dir;
const ROOT = resolve(HERE, "../..");

/** The contract run's settings, in one place. */
export const CONTRACT_DEFAULTS = {
  /** The Python that makes the virtualenv (3.10 or later). */
  python: "python3",
  /** Not committed: the virtualenv, and what schemathesis keeps between runs (its crash files, for `st replay`). */
  cacheDir: join(ROOT, ".cache/contract"),
  requirements: join(HERE, "requirements.txt"),
  config: join(HERE, "schemathesis.toml"),
  hooks: join(HERE, "hooks.py"),
  /** The version requirements.txt pins, checked after installing. */
  version: "4.32.5",
  seed: 20_261_124,
  /** Test cases per operation and phase. */
  maxExamples: 300,
  /** One request at a time: schemathesis 4.32.5 on Python 3.11 crashes parsing source in two threads at once ("AST constructor recursion depth mismatch"). */
  workers: 1,
  /** A checkout waits up to 10 s for its workflow before its 202, so a request may take longer than that. */
  requestTimeoutSeconds: 20,
  /** How long schemathesis may take to stop before it is killed (ms). */
  stopGraceMs: 5_000,
  /** A run that has not finished by then is stopped and fails (ms). */
  runTimeoutMs: 8 * 60_000,
  /**
   * Who schemathesis is to the API (schemathesis.toml sends their tokens):
   * an operator on every route, so that `GET /jobs/{id}` reads the jobs
   * the other operations started (API_TOKEN), and on `/users/{id}/…`,
   * whose `id` is fixed to its subject, the user's own token, without the
   * operator scope (USER_TOKEN, CONTRACT_USER).
   */
  callers: {
    operator: { sub: "contract-operator", scope: API_AUTH_DEFAULTS.operatorScope },
    user: { sub: "contract-user" },
  },
  /** The tokens' lifetime: the longest run, with room to spare (s). */
  tokenSeconds: 60 * 60,
} as const;

const venv = join(CONTRACT_DEFAULTS.cacheDir, "venv");
const st = join(venv, "bin", "st");
const SCHEMATHESIS: PythonTool = {
  name: "schemathesis",
  version: CONTRACT_DEFAULTS.version,
  python: CONTRACT_DEFAULTS.python,
  venv,
  requirements: CONTRACT_DEFAULTS.requirements,
  versionCommand: ["st", "--version"],
};

const log = (line: string) => console.log(`contract: ${line}`);

/** The child running now: making the virtualenv, pip, or schemathesis. */
let current: ReturnType<typeof Bun.spawn> | undefined;

/** Runs a command to its end with its output captured; throws with that output if it fails. */
const run: Run = (cmd) =>
  runToEnd(cmd, (child) => {
    current = child;
  });

let starting: Promise<System> | undefined;
let stopping: Promise<never> | undefined;
const aborter = new AbortController();

/**
 * Stops the child that runs (passing it `signal`, so that on a Ctrl-C
 * schemathesis prints what it found so far; SIGKILL after a grace period)
 * and the system, once, then exits with `code`.
 */
function finish(code: number, signal: NodeJS.Signals = "SIGTERM"): Promise<never> {
  stopping ??= (async () => {
    aborter.abort(new Error("stopping"));
    const running = current;
    if (running && running.exitCode === null) {
      running.kill(signal);
      const timer = setTimeout(() => running.kill("SIGKILL"), CONTRACT_DEFAULTS.stopGraceMs);
      await running.exited;
      clearTimeout(timer);
    }
    // Aborted while it starts, startSystem stops what it started before it rejects.
    const system = await starting?.catch(() => undefined);
    if (system) {
      log("stopping the system");
      await system.stop();
    }
    process.exit(code);
  })();
  return stopping;
}

/**
 * The runs, one after the other: the examples, coverage and fuzzing phases
 * over every operation, then the stateful phase (which follows the
 * document's links) three times. Run with the other phases, schemathesis
 * 4.32.5 ran 17 stateful scenarios; alone, over every operation, 479. That
 * run starts chains only at operations whose ids schemathesis believes some
 * response produces; it takes a quote's customer_id and a checkout's user
 * id for such ids (nothing produces them: the client picks them), so it
 * does not start the quote or the checkout chains. The last two start
 * them, over the quote operations, then over the user ones: over both at
 * once, with the user operations on a token and an id of their own, it ran
 * 36 scenarios; apart, 429 and 348.
 */
const PASSES = [
  { name: "examples, coverage, fuzzing", args: ["--phases", "examples,coverage,fuzzing"] },
  { name: "stateful", args: ["--phases", "stateful"] },
  { name: "stateful, quotes", args: ["--phases", "stateful", "--include-tag", "quotes"] },
  { name: "stateful, checkout", args: ["--phases", "stateful", "--include-tag", "users"] },
] as const;

/** The environment schemathesis.toml reads the callers' tokens from, signed with the key `system`'s API checks. */
async function callerEnv(system: System): Promise<Record<string, string>> {
  const auth = system.apiAuth;
  if (!auth) throw new Error("the system's API checks no token");
  const { operator, user } = CONTRACT_DEFAULTS.callers;
  const expiresInSeconds = CONTRACT_DEFAULTS.tokenSeconds;
  return {
    API_TOKEN: await auth.token(operator.sub, { scope: operator.scope, expiresInSeconds }),
    USER_TOKEN: await auth.token(user.sub, { expiresInSeconds }),
    CONTRACT_USER: user.sub,
  };
}

/** A pytest-style banner (`==== No issues found in 2.53s ====`), which schemathesis closes its report with. */
const BANNER = /^=+ (.+?) =+$/;

/**
 * Copies schemathesis's report to our output line by line, each banner
 * as a `contract:` line: CI reads a banner of that shape as a pytest run's
 * totals, and a banner without counts as a run that ran no test.
 */
async function relay(stream: ReadableStream<Uint8Array>, pass: string): Promise<void> {
  let pending = "";
  const write = (line: string) => {
    const banner = BANNER.exec(line);
    process.stdout.write(banner ? `contract: ${pass}: ${banner[1]}\n` : `${line}\n`);
  };
  const decoder = new TextDecoder();
  for await (const chunk of stream) {
    const lines = (pending + decoder.decode(chunk, { stream: true })).split("\n");
    pending = lines.pop() ?? "";
    for (const line of lines) write(line);
  }
  pending += decoder.decode();
  if (pending) write(pending);
}

/** Runs `st` with `args` to its end, its report on our output (see `relay`); resolves with its exit code. */
async function runSchemathesis(
  pass: string,
  args: string[],
  webhookSecret: string,
  callers: Record<string, string>,
): Promise<number> {
  const schemathesis = Bun.spawn({
    cmd: [...dieWithParent("schemathesis"), st, ...args],
    cwd: CONTRACT_DEFAULTS.cacheDir,
    env: {
      ...process.env,
      SCHEMATHESIS_HOOKS: CONTRACT_DEFAULTS.hooks,
      WEBHOOK_SECRET: webhookSecret,
      ...callers,
      // No __pycache__ beside hooks.py in the work tree.
      PYTHONDONTWRITEBYTECODE: "1",
    },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "inherit",
  });
  current = schemathesis;
  const [code] = await Promise.all([schemathesis.exited, relay(schemathesis.stdout, pass)]);
  return code;
}

process.on("SIGINT", () => void finish(130, "SIGINT"));
process.on("SIGTERM", () => void finish(143, "SIGTERM"));
// Started by a shell or npm that was killed, this stops what it started.
exitWithParent(() => finish(1), true);

try {
  await ensurePythonTool(SCHEMATHESIS, run, log);
  log("starting the system");
  starting = startSystem({
    mode: "distributed",
    // Ours, or the real server when RESONATE_BIN names one, as npm start does.
    server: { port: 0 },
    sandbox: { port: 0 },
    apiPort: 0,
    // Waits and event streams on jobs that never settle (an approval no webhook decides) end within a second, not the request timeout.
    apiEnv: { JOB_MAX_WAIT_MS: "1000", JOB_EVENTS_MAX_MS: "1000" },
    signal: aborter.signal,
  });
  const system = await starting;
  log(
    `API ${system.apiUrl}, ${system.server?.kind === "real" ? "real " : ""}Resonate server ${system.resonateUrl}, data in ${system.dataDir}`,
  );
  const callers = await callerEnv(system);
  log(
    `tokens: ${CONTRACT_DEFAULTS.callers.operator.sub} (scope ${CONTRACT_DEFAULTS.callers.operator.scope}) on every operation, ${CONTRACT_DEFAULTS.callers.user.sub} on /users/${CONTRACT_DEFAULTS.callers.user.sub}/…`,
  );
  const timeout = setTimeout(() => {
    console.error(`contract: not finished after ${CONTRACT_DEFAULTS.runTimeoutMs} ms; stopping`);
    void finish(1);
  }, CONTRACT_DEFAULTS.runTimeoutMs);

  const common = [
    "--checks",
    "all",
    "--seed",
    String(CONTRACT_DEFAULTS.seed),
    "--max-examples",
    String(CONTRACT_DEFAULTS.maxExamples),
    "--workers",
    String(CONTRACT_DEFAULTS.workers),
    "--request-timeout",
    String(CONTRACT_DEFAULTS.requestTimeoutSeconds),
    // No example database: with it, a run would replay what earlier runs found and no longer be the same run.
    "--generation-database",
    "none",
  ];
  let code = 0;
  for (const pass of PASSES) {
    const args = [
      "--config-file",
      CONTRACT_DEFAULTS.config,
      "run",
      `${system.apiUrl}/docs/json`,
      ...common,
      ...pass.args,
      ...process.argv.slice(2),
    ];
    log(`${pass.name}: st ${args.join(" ")}`);
    const passCode = await runSchemathesis(pass.name, args, system.webhookSecret, callers);
    if (stopping) await stopping;
    log(`${pass.name}: schemathesis exited with ${passCode}`);
    if (code === 0) code = passCode;
  }
  clearTimeout(timeout);
  await finish(code);
} catch (error) {
  if (!stopping) {
    console.error(`contract: ${(error as Error).message.replace(/^startSystem: /, "")}`);
    await finish(1);
  }
}
