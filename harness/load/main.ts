/**
 * Load test of the synchronous quote route (POST /price-quote) against a
 * baseline that computes the same quote in-process with no durability.
 *
 *   npm run load -- --duration 10 --rate 800 [--json load.json] [--html load.html]
 *   npm run load -- --find-capacity          ramp the rate, then check 2× capacity
 *   npm run load -- --concurrency 32         closed loop instead of a fixed rate
 *   npm run load -- --url http://host:3000   an API that is already running (BENCH_ROUTES=1 for the baseline)
 *   npm run load -- --kill-workers           kill and restart pricing workers during the durable phase
 *   npm run load -- --colocated              the API runs the quote itself (MODE=colocated): no RPC hop
 *   npm run load -- --runs 3                 alternate the durable and baseline phases three times
 *   npm run load -- --synchronous full       our server syncs every commit before answering (default: normal)
 *   npm run load -- --warmup 0               measure from a cold start (default: warm up as long as a phase)
 *   RESONATE_BIN=… npm run load -- --server real   the real Resonate server instead of ours
 *   RESONATE_BIN=… npm run load -- --server both   the same run on ours, then on the real one: one report
 *   npm run load -- --messages-poll-interval 100   the server's message delivery period (the real one's default)
 *   npm run load -- --api-runtime deno       the API on Deno (src/main.deno.ts) instead of Bun
 *
 * Checked by the tool itself for each server (exit 1 when one fails): every
 * answer within the deadline + 50 ms; no 500 and no failed connection; every
 * 202'd quote completes; the API's heap returns to its starting size after
 * the load.
 */
import { accessSync, constants, statSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { SERVER_TUNING, type ServerKind } from "../resonate-server.ts";
import { DEFAULT_SYNCHRONOUS, SYNCHRONOUS_MODES, type Synchronous } from "../server/log.ts";
import { API_RUNTIMES, isApiRuntime } from "../service.ts";
import { renderHtml } from "./html.ts";
import { ratio, table } from "./report.ts";
import { measure, type RunSettings, type ServerRun } from "./run.ts";
import { runningSystem, type ServerSettings, startSystem } from "./system.ts";

const { values } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    duration: { type: "string", default: "10" },
    runs: { type: "string", default: "1" },
    warmup: { type: "string" },
    rate: { type: "string" },
    concurrency: { type: "string" },
    "deadline-ms": { type: "string", default: "1000" },
    repeat: { type: "string", default: "0" },
    "pricing-workers": { type: "string", default: "1" },
    "find-capacity": { type: "boolean", default: false },
    "kill-workers": { type: "boolean", default: false },
    colocated: { type: "boolean", default: false },
    synchronous: { type: "string" },
    server: { type: "string" },
    "messages-poll-interval": { type: "string" },
    "api-runtime": { type: "string" },
    "quote-timeout-ms": { type: "string", default: "5000" },
    "max-waiting": { type: "string", default: "200" },
    url: { type: "string" },
    json: { type: "string" },
    html: { type: "string" },
  },
});

// ---------------------------------------------------------------- flags
function refuse(message: string): never {
  console.error(`load: ${message}`);
  process.exit(2);
}
function num(name: keyof typeof values, min = 0): number {
  const n = Number(values[name]);
  if (!Number.isFinite(n) || n < min) refuse(`--${name} must be a number ≥ ${min}, got "${values[name]}"`);
  return n;
}
const deadlineMs = num("deadline-ms", 1);
const durationS = num("duration", 1);
const repeat = num("repeat");
const runs = num("runs", 1);
if (!Number.isInteger(runs)) refuse(`--runs must be a whole number ≥ 1, got "${values.runs}"`);
if (repeat > 1) refuse("--repeat is the share of requests that repeat a recent quote, 0 to 1");
if (values.colocated && (values["kill-workers"] || values.url)) {
  refuse("--colocated starts its own API with no workers; it goes with neither --kill-workers nor --url");
}
for (const flag of ["server", "synchronous", "messages-poll-interval"] as const) {
  if (values[flag] !== undefined && values.url)
    refuse(`--${flag} sets the server this tool starts; it does not go with --url`);
}
if (values["api-runtime"] !== undefined && values.url)
  refuse("--api-runtime sets the API this tool starts; it does not go with --url");
const apiRuntime = values["api-runtime"] ?? "bun";
if (!isApiRuntime(apiRuntime))
  refuse(`--api-runtime must be one of ${API_RUNTIMES.join(", ")}, got "${values["api-runtime"]}"`);

const SERVER_CHOICES = ["harness", "real", "both"] as const;
type ServerChoice = (typeof SERVER_CHOICES)[number];
const serverChoice = (values.server ?? "harness") as ServerChoice;
if (!SERVER_CHOICES.includes(serverChoice))
  refuse(`--server must be one of ${SERVER_CHOICES.join(", ")}, got "${values.server}"`);
/** The servers to run on, in order; none with --url (the system there is not ours to know). */
const kinds: ServerKind[] = values.url ? [] : serverChoice === "both" ? ["harness", "real"] : [serverChoice];

const synchronous = (values.synchronous ?? DEFAULT_SYNCHRONOUS) as Synchronous;
if (!SYNCHRONOUS_MODES.includes(synchronous))
  refuse(`--synchronous must be one of ${SYNCHRONOUS_MODES.join(", ")}, got "${values.synchronous}"`);
if (values.synchronous && serverChoice === "real")
  refuse("--synchronous sets our server's commit log; the real server has none, so not with --server real");

const messagesPollIntervalMs =
  values["messages-poll-interval"] === undefined
    ? SERVER_TUNING.messagesPollIntervalMs
    : num("messages-poll-interval", 1);
if (!Number.isInteger(messagesPollIntervalMs))
  refuse(
    `--messages-poll-interval must be a whole number of ms ≥ 1, got "${values["messages-poll-interval"]}"`,
  );

/** The real binary, from RESONATE_BIN; refuses to go on without one. */
function realBinary(): string {
  const bin = process.env.RESONATE_BIN;
  if (!bin)
    refuse(`--server ${serverChoice} runs the real server that RESONATE_BIN names, and it is not set`);
  try {
    accessSync(bin, constants.X_OK);
    if (!statSync(bin).isFile()) throw new Error("not a file");
  } catch {
    refuse(`RESONATE_BIN=${bin} is not an executable file (--server ${serverChoice})`);
  }
  return bin;
}
const realBin = kinds.includes("real") ? realBinary() : undefined;

/** Everything a measured run does, the same on every server of `--server both`. */
const settings: RunSettings = {
  deadlineMs,
  durationS,
  warmupS: values.warmup === undefined ? durationS : num("warmup"),
  runs,
  repeat,
  shape: values.concurrency
    ? { concurrency: num("concurrency", 1) }
    : { rate: values.rate === undefined ? 500 : num("rate", 1) },
  pricingWorkers: values.colocated ? 0 : num("pricing-workers", 1),
  colocated: values.colocated,
  apiRuntime,
  killWorkers: values["kill-workers"],
  findCapacity: values["find-capacity"],
  quoteTimeoutMs: num("quote-timeout-ms", 1),
  maxWaiting: num("max-waiting", 1),
};
const servers: ServerSettings[] = kinds.map((kind) => ({
  kind,
  bin: kind === "real" ? realBin : undefined,
  synchronous: kind === "harness" ? synchronous : undefined,
  messagesPollIntervalMs,
  timeoutsPollIntervalMs: SERVER_TUNING.timeoutsPollIntervalMs,
}));

// ---------------------------------------------------------------- run
/**
 * The header line: which servers, how they poll, the API's runtime, what the
 * API and workers do, and how ours syncs.
 */
function header(): string {
  const what = `deadline ${deadlineMs} ms, ${settings.colocated ? "quotes computed in the API (colocated)" : `${settings.pricingWorkers} pricing worker(s)`}`;
  if (servers.length === 0)
    return `load: API ${values.url} (already running; its server is not known here), ${what}`;
  const poll = `messages polled every ${messagesPollIntervalMs} ms, timeouts every ${SERVER_TUNING.timeoutsPollIntervalMs} ms`;
  const synced = kinds.includes("harness")
    ? `, ${kinds.length > 1 ? "harness " : ""}server commits synced: ${synchronous}`
    : "";
  return `load: ${kinds.length > 1 ? "servers" : "server"} ${kinds.join(" then ")} (${poll}), API on ${apiRuntime}, ${what}${synced}`;
}

let exitCode = 0;
try {
  const both = servers.length > 1;
  console.log(header());
  const results: { kind: ServerKind | null; run: ServerRun }[] = [];
  for (const server of servers.length > 0 ? servers : [undefined]) {
    // Each server gets a system of its own, started fresh and stopped before the next one starts.
    const system = server ? await startSystem(server, settings) : runningSystem(values.url as string);
    try {
      if (server)
        console.log(
          `load: ${server.kind} server at ${system.server?.url}, API ${system.apiUrl} on ${apiRuntime}`,
        );
      const label = (phase: string) => (both && server ? `${server.kind}:${phase}` : phase);
      results.push({ kind: server?.kind ?? null, run: await measure(system, settings, server, label) });
    } finally {
      await system.stop();
    }
  }

  const phases = results.flatMap(({ run }) => run.phases);
  const failures = results.flatMap(({ kind, run }) =>
    run.failures.map((f) => (both && kind ? `${kind}: ${f}` : f)),
  );
  const [harness, real] = results.map(({ run }) => run.durable);
  const realVsHarness =
    both && harness && real
      ? { durable_p50: ratio(real.p50_ms, harness.p50_ms), durable_p99: ratio(real.p99_ms, harness.p99_ms) }
      : undefined;
  const report = {
    server: values.url ? null : serverChoice,
    servers: kinds,
    api_runtime: values.url ? null : apiRuntime,
    messages_poll_interval_ms: servers.length > 0 ? messagesPollIntervalMs : null,
    timeouts_poll_interval_ms: servers.length > 0 ? SERVER_TUNING.timeoutsPollIntervalMs : null,
    deadline_ms: deadlineMs,
    shape: settings.shape,
    repeat,
    pricing_workers: settings.pricingWorkers,
    colocated: settings.colocated,
    kill_workers: settings.killWorkers,
    warmup_s: settings.warmupS,
    ...(both
      ? {
          by_server: Object.fromEntries(results.map(({ kind, run }) => [kind, run.report])),
          real_vs_harness: realVsHarness,
          checks: failures.length === 0 ? "passed" : failures,
        }
      : (results[0] as (typeof results)[0]).run.report),
  };
  // On the console, without the long per-phase process lists.
  const brief = (r: Record<string, unknown>) => ({ ...r, durable: undefined, baseline: undefined });
  console.log(`\n${table(phases)}\n`);
  if (realVsHarness)
    console.log(
      `real/harness, durable: p50 ×${realVsHarness.durable_p50}, p99 ×${realVsHarness.durable_p99}\n`,
    );
  console.log(
    JSON.stringify(
      both
        ? {
            ...report,
            by_server: Object.fromEntries(results.map(({ kind, run }) => [kind, brief(run.report)])),
          }
        : brief(report),
      null,
      2,
    ),
  );
  if (values.json)
    writeFileSync(values.json, `${JSON.stringify({ ...report, timelines: phases }, null, 2)}\n`);
  if (values.html) {
    const title = `Load test: POST /price-quote${kinds.length > 0 ? ` on ${kinds.join(" and ")}, API on ${apiRuntime}` : ""}`;
    writeFileSync(values.html, renderHtml(title, phases, report));
  }
  exitCode = failures.length === 0 ? 0 : 1;
} catch (error) {
  console.error("load:", error);
  exitCode = 1;
}
process.exit(exitCode);
