/**
 * A trace backend with a UI on this machine: Arize Phoenix (PyPI, pinned
 * with hashes in requirements.txt beside this file), which takes OTLP/HTTP
 * protobuf on `/v1/traces` and shows each trace as a tree of its spans.
 * Chosen because it is the one OTLP backend with a UI that installs here
 * from a registry: Jaeger's Go module serves a placeholder page without
 * UI assets built from another repository, Zipkin's OTLP module has no
 * release on Maven Central, and otel-tui is not on the Go module proxy.
 *
 *   npm run traces                      (or: bun harness/traces/main.ts)
 *   npm run traces -- --port 6007
 *   OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:6006 npm start     (in another terminal)
 *
 * The virtualenv is made once in .cache/traces/ (about 850 MB, a few
 * minutes) and made again when requirements.txt changes; the spans are
 * kept in .cache/traces/data between runs. Phoenix listens on 127.0.0.1
 * only, sends no telemetry, and writes its log to .cache/traces/phoenix.log.
 * Ctrl-C or SIGTERM stops it. Not part of CI.
 */
import { closeSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { exitWithParent } from "../../core/parent-process.ts";
import { dieWithParent, freePort } from "../process.ts";
import { ensurePythonTool, type PythonTool, type Run, runToEnd } from "../python-tool.ts";
import { waitFor } from "../wait-for.ts";
import { TRACES_DEFAULTS } from "./defaults.ts";

const PHOENIX: PythonTool = {
  name: "Phoenix",
  version: TRACES_DEFAULTS.version,
  python: TRACES_DEFAULTS.python,
  venv: join(TRACES_DEFAULTS.cacheDir, "venv"),
  requirements: TRACES_DEFAULTS.requirements,
  versionCommand: ["python", "-c", "import phoenix; print(phoenix.__version__)"],
};

const log = (line: string) => console.log(`traces: ${line}`);

/** The child running now: making the virtualenv, pip, or Phoenix. */
let current: ReturnType<typeof Bun.spawn> | undefined;
let stopping: Promise<never> | undefined;

/** Runs a command to its end with its output captured; throws with that output if it fails. */
const run: Run = (cmd) =>
  runToEnd(cmd, (child) => {
    current = child;
  });

/** Stops the child that runs (SIGTERM, SIGKILL after a grace period), once, then exits with `code`. */
function finish(code: number): Promise<never> {
  stopping ??= (async () => {
    const running = current;
    if (running && running.exitCode === null) {
      running.kill("SIGTERM");
      const timer = setTimeout(() => running.kill("SIGKILL"), TRACES_DEFAULTS.stopGraceMs);
      await running.exited;
      clearTimeout(timer);
    }
    process.exit(code);
  })();
  return stopping;
}

process.on("SIGINT", () => void finish(130));
process.on("SIGTERM", () => void finish(143));
exitWithParent(() => finish(1), true);

const { values } = parseArgs({ options: { port: { type: "string" } } });
const port = Number(values.port ?? TRACES_DEFAULTS.port);
if (!Number.isInteger(port) || port < 1 || port > 65_535) {
  console.error(`traces: --port must be a port number from 1 to 65535, got ${values.port}`);
  process.exit(2);
}

try {
  await ensurePythonTool(PHOENIX, run, log);
  const data = join(TRACES_DEFAULTS.cacheDir, "data");
  const logFile = join(TRACES_DEFAULTS.cacheDir, "phoenix.log");
  mkdirSync(data, { recursive: true });
  const output = openSync(logFile, "a");
  const phoenix = Bun.spawn({
    cmd: [...dieWithParent("phoenix"), join(PHOENIX.venv, "bin", "phoenix"), "serve"],
    env: {
      ...process.env,
      PHOENIX_HOST: "127.0.0.1",
      PHOENIX_PORT: String(port),
      // Phoenix also listens for OTLP over gRPC, which nothing here sends: any free port will do.
      PHOENIX_GRPC_PORT: String(freePort()),
      PHOENIX_WORKING_DIR: data,
      PHOENIX_TELEMETRY_ENABLED: "false",
      PHOENIX_DB_LOGGING_LEVEL: "warning",
      PYTHONDONTWRITEBYTECODE: "1",
    },
    stdin: "ignore",
    stdout: output,
    stderr: output,
  });
  closeSync(output);
  current = phoenix;
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    async () => {
      if (phoenix.exitCode !== null) throw new Error(`Phoenix exited with ${phoenix.exitCode}`);
      return (await fetch(`${url}/healthz`).catch(() => undefined))?.ok;
    },
    { timeout: TRACES_DEFAULTS.startTimeoutMs, message: `Phoenix answering on ${url}/healthz` },
  ).catch((error) => {
    const tail = readFileSync(logFile, "utf8").split("\n").slice(-20).join("\n");
    throw new Error(`${(error as Error).message}; the end of ${logFile}:\n${tail}`);
  });
  log(`Phoenix ${TRACES_DEFAULTS.version}: ${url} (spans kept in ${data}, log in ${logFile})`);
  log("send every process's spans there (OTLP/HTTP protobuf), in another terminal:");
  console.log(`  OTEL_EXPORTER_OTLP_ENDPOINT=${url} npm start`);
  log("Ctrl-C stops it");
  const code = await phoenix.exited;
  if (!stopping) {
    console.error(`traces: Phoenix exited with ${code}; its log: ${logFile}`);
    await finish(1);
  }
} catch (error) {
  if (!stopping) {
    console.error(`traces: ${(error as Error).message}`);
    await finish(1);
  }
}
