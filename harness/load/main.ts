/**
 * Load test of the synchronous quote route (POST /price-quote) against a
 * baseline that computes the same quote in-process with no durability.
 *
 *   npm run load -- --duration 10 --rate 800 [--json load.json] [--html load.html]
 *   npm run load -- --find-capacity          ramp the rate, then check 2× capacity
 *   npm run load -- --concurrency 32         closed loop instead of a fixed rate
 *   npm run load -- --url http://host:3000   an API that is already running (BENCH_ROUTES=1 for the baseline)
 *   API_TOKEN=$(cat .data/api-token) npm run load -- --url http://127.0.0.1:3000   …with that bearer token
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
 *
 * Every request to the quote, baseline and stats routes carries one bearer
 * token for the whole run, signed before it starts: an operator's (sub
 * `load`) signed with the key of the API the tool starts, or, with `--url`,
 * the one in API_TOKEN (none if it is not set). A token the API refuses
 * stops the run before it measures anything.
 */
import { accessSync, constants, statSync, writeFileSync } from "node:fs";
import { parseFlags } from "../cli.ts";
import { DEFAULT_SYNCHRONOUS, SYNCHRONOUS_MODES, type Synchronous } from "../resonate-server/log.ts";
import { API_RUNTIMES, type ApiRuntime } from "../service.ts";
import {
  defaultStorage,
  messagesPollFor,
  SERVER_TUNING,
  type ServerKind,
  STORAGES,
  type Storage,
} from "../start-server.ts";
import { renderHtml } from "./html.ts";
import { startOtlpSink } from "./otlp-sink.ts";
import { apiMetricsTable, ratio, table } from "./report.ts";
import { measure, type RunSettings, type ServerRun } from "./run.ts";
import { runningSystem, type ServerSettings, startLoadSystem } from "./system.ts";

const SERVER_CHOICES = ["harness", "real", "both"] as const;
/** The real server's store: `both` runs it on SQLite, then on PostgreSQL. */
const STORAGE_CHOICES = [...STORAGES, "both"] as const;
/** How results reach the API: its message stream, HTTP push (`RESONATE_PUSH_*`), or one run of each. */
const DELIVERY_CHOICES = ["stream", "push", "both"] as const;
type ServerChoice = (typeof SERVER_CHOICES)[number];

/** Everything the flags ask for, checked. */
interface LoadPlan {
  /** `--url`: an API that runs already; then no server is started. */
  url: string | undefined;
  /** API_TOKEN: the bearer token for the API at `--url` (one this tool starts gets a token it signs). */
  token: string | undefined;
  serverChoice: ServerChoice;
  /** The servers to run on, in order; none with --url (the system there is not ours to know). */
  kinds: ServerKind[];
  servers: ServerSettings[];
  synchronous: Synchronous;
  /** `--messages-poll-interval`, when given; else each server gets `messagesPollFor` its store. */
  messagesPollIntervalMs: number | undefined;
  apiRuntime: ApiRuntime;
  settings: RunSettings;
  json: string | undefined;
  html: string | undefined;
}

// ---------------------------------------------------------------- flags
/** Reads the command line; a bad flag, or flags that do not go together, exit 2 with a message. */
function readPlan(args: string[]): LoadPlan {
  const { values, fail } = parseFlags(
    {
      duration: { type: "number", min: 1, default: 10 },
      runs: { type: "number", min: 1, integer: true, default: 1 },
      warmup: { type: "number", min: 0 },
      rate: { type: "number", min: 1 },
      concurrency: { type: "number", min: 1 },
      "deadline-ms": { type: "number", min: 1, default: 1000 },
      repeat: { type: "number", min: 0, default: 0 },
      "pricing-workers": { type: "number", min: 1, default: 1 },
      "api-processes": { type: "number", min: 1, max: 64, integer: true, default: 1 },
      "find-capacity": { type: "boolean" },
      "kill-workers": { type: "boolean" },
      colocated: { type: "boolean" },
      synchronous: { type: "enum", values: SYNCHRONOUS_MODES },
      server: { type: "enum", values: SERVER_CHOICES },
      storage: { type: "enum", values: STORAGE_CHOICES },
      "messages-poll-interval": { type: "number", min: 1, integer: true, unit: "ms" },
      delivery: { type: "enum", values: DELIVERY_CHOICES, default: "stream" },
      "trace-ratio": { type: "number", min: 0, max: 1 },
      "api-runtime": { type: "enum", values: API_RUNTIMES },
      "quote-timeout-ms": { type: "number", min: 1, default: 5000 },
      "max-waiting": { type: "number", min: 1, default: 200 },
      url: { type: "string" },
      json: { type: "string" },
      html: { type: "string" },
    },
    {
      tool: "load",
      usage:
        "npm run load -- [--duration <s>] [--rate <req/s> | --concurrency <n>] [flags]   (with --url, API_TOKEN=<jwt> is the bearer token it sends)",
      args,
    },
  );
  if (values.repeat > 1) fail("--repeat is the share of requests that repeat a recent quote, 0 to 1");
  if (values.colocated && (values["kill-workers"] || values.url)) {
    fail("--colocated starts its own API with no workers; it goes with neither --kill-workers nor --url");
  }
  if (values["trace-ratio"] !== undefined && values.url)
    fail("--trace-ratio turns tracing on in the system this tool starts; it does not go with --url");
  if (values.delivery !== "stream" && values.url)
    fail("--delivery sets how the server this tool starts reaches its API; it does not go with --url");
  for (const flag of ["server", "storage", "synchronous", "messages-poll-interval"] as const) {
    if (values[flag] !== undefined && values.url)
      fail(`--${flag} sets the server this tool starts; it does not go with --url`);
  }
  for (const flag of ["api-runtime", "api-processes"] as const) {
    if (values[flag] !== undefined && values[flag] !== 1 && values.url)
      fail(`--${flag} sets the API this tool starts; it does not go with --url`);
  }
  const apiRuntime = values["api-runtime"] ?? "bun";
  const serverChoice = values.server ?? "harness";
  if (values.storage && serverChoice === "harness")
    fail("--storage sets the real server's store; ours keeps SQLite only, so it needs --server real or both");
  const storageChoice = values.storage ?? (serverChoice === "harness" ? "sqlite" : defaultStorage());
  if (storageChoice === "both" && serverChoice === "both")
    fail("--storage both compares the real server's stores: give --server real with it");
  const storages: Storage[] = storageChoice === "both" ? [...STORAGES] : [storageChoice];
  const kinds: ServerKind[] = values.url
    ? []
    : serverChoice === "both"
      ? ["harness", "real"]
      : [serverChoice];
  if (values.synchronous && serverChoice === "real")
    fail("--synchronous sets our server's commit log; the real server has none, so not with --server real");
  const synchronous = values.synchronous ?? DEFAULT_SYNCHRONOUS;
  const messagesPollIntervalMs = values["messages-poll-interval"];

  /** The real binary, from RESONATE_BIN; refuses to go on without one. */
  const realBinary = (): string => {
    const bin = process.env.RESONATE_BIN;
    if (!bin)
      return fail(`--server ${serverChoice} runs the real server that RESONATE_BIN names, and it is not set`);
    try {
      accessSync(bin, constants.X_OK);
      if (!statSync(bin).isFile()) throw new Error("not a file");
    } catch {
      fail(`RESONATE_BIN=${bin} is not an executable file (--server ${serverChoice})`);
    }
    return bin;
  };
  const realBin = kinds.includes("real") ? realBinary() : undefined;

  const durationS = values.duration;
  return {
    url: values.url,
    token: values.url ? process.env.API_TOKEN || undefined : undefined,
    serverChoice,
    kinds,
    servers: kinds.flatMap((kind) =>
      (kind === "real" ? storages : (["sqlite"] as const)).flatMap((storage) =>
        (values.delivery === "both" ? [false, true] : [values.delivery === "push"]).map((push) => ({
          kind,
          name: `${kind === "real" && storage === "postgres" ? "real-postgres" : kind}${push ? "-push" : ""}`,
          storage,
          push,
          bin: kind === "real" ? realBin : undefined,
          synchronous: kind === "harness" ? synchronous : undefined,
          messagesPollIntervalMs: messagesPollIntervalMs ?? messagesPollFor(storage),
          timeoutsPollIntervalMs: SERVER_TUNING.timeoutsPollIntervalMs,
        })),
      ),
    ),
    synchronous,
    messagesPollIntervalMs,
    apiRuntime,
    /** Everything a measured run does, the same on every server of `--server both`. */
    settings: {
      deadlineMs: values["deadline-ms"],
      durationS,
      warmupS: values.warmup ?? durationS,
      runs: values.runs,
      repeat: values.repeat,
      shape:
        values.concurrency !== undefined ? { concurrency: values.concurrency } : { rate: values.rate ?? 500 },
      pricingWorkers: values.colocated ? 0 : values["pricing-workers"],
      colocated: values.colocated,
      apiRuntime,
      apiProcesses: values["api-processes"],
      killWorkers: values["kill-workers"],
      findCapacity: values["find-capacity"],
      quoteTimeoutMs: values["quote-timeout-ms"],
      maxWaiting: values["max-waiting"],
      traceRatio: values["trace-ratio"],
    },
    json: values.json,
    html: values.html,
  };
}

// ---------------------------------------------------------------- run
/**
 * The header line: which servers, how they poll, the API's runtime, what the
 * API and workers do, and how ours syncs.
 */
function header(plan: LoadPlan): string {
  const { settings, kinds } = plan;
  const what = `deadline ${settings.deadlineMs} ms, ${settings.colocated ? "quotes computed in the API (colocated)" : `${settings.pricingWorkers} pricing worker(s)`}`;
  if (plan.servers.length === 0) {
    const token = plan.token ? "the bearer token in API_TOKEN" : "no bearer token (API_TOKEN is not set)";
    return `load: API ${plan.url} (already running; its server is not known here), ${token}, ${what}`;
  }
  const polls = [...new Set(plan.servers.map((s) => s.messagesPollIntervalMs))];
  const poll = `messages polled every ${polls.length > 1 ? plan.servers.map((s) => `${s.messagesPollIntervalMs} ms (${s.name})`).join(", ") : `${polls[0]} ms`}, timeouts every ${SERVER_TUNING.timeoutsPollIntervalMs} ms`;
  const synced = kinds.includes("harness")
    ? `, ${kinds.length > 1 ? "harness " : ""}server commits synced: ${plan.synchronous}`
    : "";
  const apis = settings.apiProcesses > 1 ? `${settings.apiProcesses} API processes` : "API";
  const names = plan.servers.map((s) => s.name);
  return `load: ${names.length > 1 ? "servers" : "server"} ${names.join(" then ")} (${poll}), ${apis} on ${plan.apiRuntime}, ${what}${synced}`;
}

/** Runs every server's measured run, prints and writes the reports; resolves with the exit code. */
async function runLoad(plan: LoadPlan): Promise<number> {
  const { settings, servers, kinds, apiRuntime } = plan;
  const both = servers.length > 1;
  console.log(header(plan));
  /** Each server's run, by its name (`harness`, `real`, `real-postgres`). */
  const results: { name: string | null; run: ServerRun }[] = [];
  const sink = settings.traceRatio === undefined ? undefined : startOtlpSink();
  const tracing = sink && { endpoint: sink.url, ratio: settings.traceRatio as number };
  if (tracing)
    console.log(`load: tracing on, new traces sampled at ${tracing.ratio}, spans to ${tracing.endpoint}`);
  for (const server of servers.length > 0 ? servers : [undefined]) {
    // Each server gets a system of its own, started fresh and stopped before the next one starts.
    const system = server
      ? await startLoadSystem(server, { ...settings, tracing })
      : runningSystem(plan.url as string, plan.token);
    try {
      if (server)
        console.log(
          `load: ${server.name} server at ${system.server?.url}, API ${system.apiUrl} on ${apiRuntime}`,
        );
      const label = (phase: string) => (both && server ? `${server.name}:${phase}` : phase);
      results.push({ name: server?.name ?? null, run: await measure(system, settings, server, label) });
    } finally {
      await system.stop();
    }
  }

  sink?.stop();
  const phases = results.flatMap(({ run }) => run.phases);
  const failures = results.flatMap(({ name, run }) =>
    run.failures.map((f) => (both && name ? `${name}: ${f}` : f)),
  );
  const durableOf = (name: string) => results.find((r) => r.name === name)?.run.durable;
  const [harness, real, realPostgres] = ["harness", "real", "real-postgres"].map(durableOf);
  const postgresVsSqlite =
    real && realPostgres
      ? {
          durable_p50: ratio(realPostgres.p50_ms, real.p50_ms),
          durable_p99: ratio(realPostgres.p99_ms, real.p99_ms),
        }
      : undefined;
  /** Each server's pushed run over its streamed one, where `--delivery both` ran both. */
  const pushVsStream = Object.fromEntries(
    results.flatMap(({ name, run }) => {
      const streamed = name?.endsWith("-push") ? durableOf(name.slice(0, -"-push".length)) : undefined;
      return streamed && run.durable
        ? [
            [
              name?.slice(0, -"-push".length),
              {
                durable_p50: ratio(run.durable.p50_ms, streamed.p50_ms),
                durable_p99: ratio(run.durable.p99_ms, streamed.p99_ms),
              },
            ],
          ]
        : [];
    }),
  );
  const realVsHarness =
    both && harness && real
      ? { durable_p50: ratio(real.p50_ms, harness.p50_ms), durable_p99: ratio(real.p99_ms, harness.p99_ms) }
      : undefined;
  const report = {
    server: plan.url ? null : plan.serverChoice,
    servers: servers.map((s) => s.name),
    api_runtime: plan.url ? null : apiRuntime,
    messages_poll_interval_ms:
      servers.length > 0 ? Object.fromEntries(servers.map((s) => [s.name, s.messagesPollIntervalMs])) : null,
    timeouts_poll_interval_ms: servers.length > 0 ? SERVER_TUNING.timeoutsPollIntervalMs : null,
    deadline_ms: settings.deadlineMs,
    shape: settings.shape,
    repeat: settings.repeat,
    pricing_workers: settings.pricingWorkers,
    colocated: settings.colocated,
    kill_workers: settings.killWorkers,
    warmup_s: settings.warmupS,
    tracing: sink ? { trace_ratio: settings.traceRatio, ...sink.counts() } : null,
    ...(both
      ? {
          by_server: Object.fromEntries(results.map(({ name, run }) => [name, run.report])),
          real_vs_harness: realVsHarness,
          postgres_vs_sqlite: postgresVsSqlite,
          push_vs_stream: Object.keys(pushVsStream).length > 0 ? pushVsStream : undefined,
          checks: failures.length === 0 ? "passed" : failures,
        }
      : (results[0] as (typeof results)[0]).run.report),
  };
  // On the console, without the long per-phase process lists, and the API's metrics as tables of their own.
  const brief = (r: Record<string, unknown>) => ({
    ...r,
    durable: undefined,
    baseline: undefined,
    api_metrics: undefined,
  });
  console.log(`\n${table(phases)}\n`);
  for (const { name, run } of results) {
    const label = both && name ? `${name} server` : "API";
    console.log(
      run.apiMetrics
        ? `${apiMetricsTable(label, run.apiMetrics)}\n`
        : `${label}: GET /metrics did not answer; no view from the API's own metrics\n`,
    );
  }
  if (postgresVsSqlite)
    console.log(
      `real on PostgreSQL/real on SQLite, durable: p50 ×${postgresVsSqlite.durable_p50}, p99 ×${postgresVsSqlite.durable_p99}\n`,
    );
  if (realVsHarness)
    console.log(
      `real/harness, durable: p50 ×${realVsHarness.durable_p50}, p99 ×${realVsHarness.durable_p99}\n`,
    );
  console.log(
    JSON.stringify(
      both
        ? {
            ...report,
            by_server: Object.fromEntries(results.map(({ name, run }) => [name, brief(run.report)])),
          }
        : brief(report),
      null,
      2,
    ),
  );
  if (plan.json) writeFileSync(plan.json, `${JSON.stringify({ ...report, timelines: phases }, null, 2)}\n`);
  if (plan.html) {
    const title = `Load test: POST /price-quote${kinds.length > 0 ? ` on ${kinds.join(" and ")}, API on ${apiRuntime}` : ""}`;
    writeFileSync(plan.html, renderHtml(title, phases, report));
  }
  return failures.length === 0 ? 0 : 1;
}

const plan = readPlan(Bun.argv.slice(2));
process.exit(
  await runLoad(plan).catch((error: unknown) => {
    console.error("load:", error);
    return 1;
  }),
);
