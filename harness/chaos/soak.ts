/**
 * The soak: the whole system under random kills, with a stream of jobs,
 * approvals, checkouts and quotes, a share of them asked to cancel at random
 * moments and a share of the jobs' event streams followed, then the
 * invariant report. With `--rolling-restarts <n>`, n deploys beside it:
 * every API process, then every worker, stopped with SIGTERM and replaced
 * one at a time. With `--deploys <n>`, the same rounds roll the workflows'
 * build from `current` to `next` (`process_order` version 2, a step more)
 * and back, and every finished job is replayed against the code of the
 * version it was started at (`version_mismatches`).
 *
 *   npm run chaos -- --workflows 1000 --kills 200 --server-restarts 3 --seed 42 [--json report.json]
 *   npm run chaos -- --rolling-restarts 3 --kills 0 --server-restarts 0 --api-restarts 0   the rolling drill
 *   npm run chaos -- --deploys 2 --kills 0 --server-restarts 0 --api-restarts 0            the deploy drill
 *   RESONATE_BIN=… npm run chaos -- --server real …   the real Resonate server instead of ours
 *   RESONATE_BIN=… npm run chaos -- --server real --storage postgres --postgres-restarts 3   its PostgreSQL killed and started again
 *
 * Exits 1 if any workflow was lost, any effect happened twice, any rule of
 * cancellation or of the event streams was broken, a job ran another
 * version's steps, (in a drill with no kills) any request failed, or (with
 * PostgreSQL restarts) the API answered a 5xx but a 503 with Retry-After.
 */
import { writeFileSync } from "node:fs";
import { Next } from "../../core/functions.ts";
import { versionKey } from "../../core/resonate/versions.ts";
import { parseFlags } from "../cli.ts";
import { defaultServerKind, defaultStorage, STORAGES, type Storage } from "../start-server.ts";
import { failuresBeyondTheKernel, kernelMigratesRequests } from "./client.ts";
import { cancelCrashes } from "./crash-points.ts";
import { cancelLine, summaryLine } from "./invariants.ts";
import { readProbes } from "./probe-log.ts";
import { seededRandom } from "./rng.ts";
import { rollingLine, spreadOver, startRollingRestarts } from "./rolling.ts";
import { startChaos } from "./scheduler.ts";
import { CHAOS_SECRET, startChaosStack } from "./stack.ts";
import { checkStreams } from "./streams.ts";
import { checkVersions, drainedOf } from "./versions.ts";
import { observeRun, runWorkload, waitQuiescent } from "./workload.ts";

const count = (fallback: number) =>
  ({ type: "number", min: 0, integer: true, expected: "a whole number", default: fallback }) as const;
const share = (fallback: number) => ({ type: "number", min: 0, max: 1, default: fallback }) as const;
const { values, fail } = parseFlags(
  {
    workflows: count(1000),
    kills: count(200),
    "server-restarts": count(3),
    "postgres-restarts": count(0),
    "postgres-down-ms": { type: "string", default: "500-3000" },
    "api-restarts": count(1),
    "rolling-restarts": count(0),
    deploys: count(0),
    // Default 1, or 2 with --rolling-restarts (see below).
    "api-processes": {
      type: "number",
      min: 1,
      max: 64,
      integer: true,
      expected: "a whole number from 1 to 64",
    },
    seed: count(42),
    "workers-per-group": count(2),
    concurrency: count(16),
    "kill-interval-ms": { type: "string", default: "100-400" },
    "quiesce-timeout-s": count(180),
    "cancel-share": share(0.3),
    "cancel-delay-ms": { type: "string", default: "0-1000" },
    "decline-share": share(0.1),
    "follow-share": share(0.3),
    "cooling-off-ms": count(250),
    "payment-delay-ms": count(200),
    "crash-at": { type: "string", default: cancelCrashes() },
    server: { type: "enum", values: ["harness", "real"], default: defaultServerKind() },
    storage: { type: "enum", values: STORAGES },
    json: { type: "string" },
  },
  { tool: "chaos", usage: "npm run chaos -- [--workflows <n>] [--kills <n>] [--seed <n>] [flags]" },
);
const { seed, workflows, kills } = values;
const deploys = values.deploys;
if (deploys > 0 && values["rolling-restarts"] > 0)
  fail("--deploys rolls builds with the same restarts as --rolling-restarts: give one of them");
// A deploy is a rolling restart to another build (round 1 to `next`, round 2 back, …).
const rollingRounds = deploys > 0 ? deploys : values["rolling-restarts"];
// Restarting the only API process would refuse connections: a drill needs another to take them.
const apiProcesses = values["api-processes"] ?? (rollingRounds > 0 ? 2 : 1);
if (rollingRounds > 0 && apiProcesses < 2)
  fail(`--rolling-restarts needs at least 2 API processes, got --api-processes ${apiProcesses}`);
/** Only graceful restarts: then no request may fail (kills legitimately cut connections). */
const pureDrill =
  rollingRounds > 0 && kills === 0 && values["server-restarts"] === 0 && values["api-restarts"] === 0;
const perGroup = Math.max(1, values["workers-per-group"]);
const interval =
  /^(\d+)-(\d+)$/.exec(values["kill-interval-ms"]) ??
  fail(`--kill-interval-ms must be <min>-<max> in ms, got "${values["kill-interval-ms"]}"`);
const [killMin, killMax] = [Number(interval[1]), Number(interval[2])];
const cancelDelay =
  /^(\d+)-(\d+)$/.exec(values["cancel-delay-ms"]) ??
  fail(`--cancel-delay-ms must be <min>-<max> in ms, got "${values["cancel-delay-ms"]}"`);
if (values.server === "real" && !process.env.RESONATE_BIN)
  fail("--server real runs the real server that RESONATE_BIN names, and it is not set");
const storage: Storage = values.storage ?? (values.server === "real" ? defaultStorage() : "sqlite");
if (storage === "postgres" && values.server !== "real")
  fail("--storage postgres needs --server real: our server keeps SQLite only");
if (values["postgres-restarts"] > 0 && storage !== "postgres")
  fail("--postgres-restarts needs --storage postgres (and --server real)");
const down =
  /^(\d+)-(\d+)$/.exec(values["postgres-down-ms"]) ??
  fail(`--postgres-down-ms must be <min>-<max> in ms, got "${values["postgres-down-ms"]}"`);

/** Fewest, median and most of `ms`, or undefined when there is none. */
const summarize = (ms: number[]) => {
  const sorted = ms.toSorted((a, b) => a - b);
  return sorted.length === 0
    ? undefined
    : { min: sorted[0], median: sorted[Math.floor(sorted.length / 2)], max: sorted.at(-1) };
};

/** Whether Linux hands the connections queued on a closing SO_REUSEPORT listener to the others of its group. */
const started = Date.now();
console.log(
  `chaos: seed ${seed}, server ${values.server} on ${storage}, ${workflows} workflows, ${kills} kills, ` +
    `${values["server-restarts"]} server restarts, ${values["postgres-restarts"]} PostgreSQL restarts, ${values["api-restarts"]} API restarts, ` +
    `${rollingRounds} rolling restarts, ${apiProcesses} API processes, cancel share ${values["cancel-share"]}`,
);
const stack = await startChaosStack({
  server: values.server,
  storage,
  apiProcesses,
  groups: { "order-workers": perGroup, "pricing-workers": perGroup, db: perGroup, business: perGroup },
  webhookCopies: 2,
  webhookShuffleSeed: seed,
  paymentWebhookDelayMs: values["payment-delay-ms"],
  crashAt: values["crash-at"],
  env: { SHIP_COOLING_OFF_MS: String(values["cooling-off-ms"]) },
});
let exitCode = 1;
try {
  const chaos = startChaos({
    seed,
    pool: stack.pool,
    intervalMs: [killMin, killMax],
    maxKills: kills,
    server: { handle: stack.server, restarts: values["server-restarts"] },
    ...(stack.server.postgres
      ? {
          postgres: {
            handle: stack.server.postgres,
            restarts: values["postgres-restarts"],
            downMs: [Number(down[1]), Number(down[2])] as [number, number],
          },
        }
      : {}),
    extra: {
      name: "api",
      restarts: values["api-restarts"],
      kill: () => stack.api.kill(),
      restart: () => stack.api.restart(),
    },
  });
  const rolling = startRollingRestarts({
    target: stack,
    rounds: rollingRounds,
    seed,
    held: true,
    ...(deploys > 0
      ? {
          deploy: {
            drained: drainedOf(
              stack.server.url,
              versionKey(Next.processOrderV2.name, Next.processOrderV2.version),
            ),
          },
        }
      : {}),
  });
  const progress = setInterval(() => {
    console.log(
      `chaos: ${Math.round((Date.now() - started) / 1000)} s, ${chaos.kills} kills, ${chaos.serverRestarts} server restarts` +
        (rollingRounds > 0
          ? `, ${rolling.rounds} rolling restarts (${rolling.processesRestarted} processes)`
          : ""),
    );
  }, 10_000);
  const work = await runWorkload({
    apiUrl: stack.api.url,
    webhookSecret: CHAOS_SECRET,
    token: (sub, claims) => stack.apiAuth.token(sub, claims),
    rng: seededRandom(seed + 1),
    count: workflows,
    concurrency: values.concurrency,
    prefix: `soak${seed}`,
    retryForMs: 120_000,
    cancel: {
      share: values["cancel-share"],
      delayMs: [Number(cancelDelay[1]), Number(cancelDelay[2])],
    },
    declineShare: values["decline-share"],
    follow: { share: values["follow-share"], forMs: values["quiesce-timeout-s"] * 1000 },
    pace: spreadOver(rolling, workflows),
  });
  // Begun by the workload unless it was too short to reach it.
  rolling.begin();
  const submittedS = Math.round((Date.now() - started) / 1000);
  await chaos.done;
  // A restart that failed (a successor that never got ready) fails the run, after the report.
  const rollingError = await rolling.done.then(
    () => undefined,
    (error: unknown) => (error as Error).message,
  );
  clearInterval(progress);
  console.log(
    `chaos: workload done in ${submittedS} s` +
      (rollingRounds > 0 ? `, rolling restarts in ${Math.round((Date.now() - started) / 1000)} s` : "") +
      "; waiting for quiescence",
  );
  await waitQuiescent(stack.server.url, work.accepted, values["quiesce-timeout-s"] * 1000);
  const token = (sub: string, claims?: { scope?: string }) => stack.apiAuth.token(sub, claims);
  const { observations, statuses } = await observeRun(stack.api.url, token, work);
  const report = await stack.report(work.accepted, work.webhooks, observations);
  const streamViolations = checkStreams(work.streams, statuses);
  const failed = work.failedRequests;
  const crashes = readProbes(stack.probeLog)
    .filter((p) => p.point === "crash")
    .map((p) => p.at);
  // Every finished job replayed against the code of the version it started at: a job run by another version's code parts.
  const versions = deploys > 0 ? await checkVersions(stack.server.url, work.accepted) : undefined;
  const full = {
    seed,
    server: stack.server.kind,
    storage: stack.server.storage,
    workflows: report.workflows,
    requested: workflows,
    by_kind: work.byKind,
    completed: report.completed,
    outcomes: report.outcomes,
    failed: report.failed,
    timed_out: report.timed_out,
    canceled: report.canceled,
    pending: report.pending,
    lost: report.lost + work.failures.length,
    lost_ids: report.lost_ids,
    client_failures: work.failures,
    duplicate_effects: report.duplicate_effects,
    duplicate_rows: report.duplicate_rows,
    stock_mismatches: report.stock_mismatches,
    cancel_violations: report.cancel_violations,
    violations: report.violations,
    unlisted: report.unlisted,
    unlisted_ids: report.unlisted_ids,
    cancels: report.cancels,
    // What the 5xx answers to cancels said, one of each kind: a cancel is retried, so they cost no correctness.
    cancel_5xx: [
      ...new Set(work.cancels.flatMap((c) => c.retried ?? []).map((m) => m.replace(/\d{3,}/g, "#"))),
    ].slice(0, 20),
    charges: report.charges,
    refunds: report.refunds,
    shipments: report.shipments,
    order_rows: report.order_rows,
    webhooks: report.webhooks,
    kills: chaos.kills,
    crash_points: crashes,
    server_restarts: chaos.serverRestarts,
    postgres_restarts: chaos.postgresRestarts,
    api_restarts: chaos.extraRestarts,
    api_processes: stack.apiProcesses,
    rolling_restarts: rolling.rounds,
    processes_restarted: rolling.processesRestarted,
    ...(versions
      ? {
          deploys: rolling.rounds,
          jobs_by_version: versions.started,
          version_mismatches: versions.mismatches.length,
          version_mismatch_details: versions.mismatches.slice(0, 20),
        }
      : {}),
    // From SIGTERM to the successor's readiness, per process restarted (ms).
    restart_ms: summarize(rolling.restarts.map((r) => r.ms)),
    slowest_restarts: rolling.restarts.toSorted((a, b) => b.ms - a.ms).slice(0, 5),
    ...(rollingError === undefined ? {} : { rolling_error: rollingError }),
    failed_requests: failed.count,
    failed_requests_by_kind: failed.by_kind,
    failed_request_samples: failed.samples,
    streams_followed: work.streams.length,
    stream_reconnects: work.streams.reduce((n, s) => n + s.reconnects, 0),
    stream_drops: work.streams.reduce((n, s) => n + s.drops, 0),
    stream_violations: streamViolations.length,
    stream_violation_details: streamViolations.slice(0, 50),
    worker_processes_started: stack.pool.processes.length,
    duration_s: Math.round((Date.now() - started) / 100) / 10,
  };
  console.log(JSON.stringify(full, null, 2));
  console.log(
    summaryLine(
      "chaos",
      { ...report, lost: full.lost },
      chaos.kills + chaos.serverRestarts + chaos.postgresRestarts + chaos.extraRestarts + crashes.length,
    ),
  );
  console.log(cancelLine(report));
  console.log(rollingLine(rolling, failed, work.streams, streamViolations));
  if (versions)
    console.log(
      `deploys: ${rolling.rounds} (current → next${rolling.rounds > 1 ? " → current" : ""}${rolling.rounds > 2 ? " → …" : ""}), jobs by version ${JSON.stringify(versions.started)}, ${versions.mismatches.length} version mismatches`,
    );
  if (failed.by_kind.reset && apiProcesses > 1 && !kernelMigratesRequests())
    console.log(
      "note: net.ipv4.tcp_migrate_req is 0 here, so a connection the kernel queued on an API process's listening socket as it closed was reset; with 1 it goes to another process (docs/deploying.md)",
    );
  if (values.json) writeFileSync(values.json, `${JSON.stringify(full, null, 2)}\n`);
  const clean =
    full.lost === 0 &&
    full.duplicate_effects === 0 &&
    full.duplicate_rows === 0 &&
    full.stock_mismatches === 0 &&
    full.cancel_violations === 0 &&
    full.unlisted === 0 &&
    full.stream_violations === 0 &&
    rollingError === undefined &&
    (versions?.mismatches.length ?? 0) === 0 &&
    !(pureDrill && failuresBeyondTheKernel(failed).count > 0) &&
    // While the store is away the API answers 503 with Retry-After; any other 5xx is a failure.
    !(chaos.postgresRestarts > 0 && (failed.by_kind["5xx"] ?? 0) > 0);
  exitCode = clean ? 0 : 1;
} finally {
  await stack.stop();
}
process.exit(exitCode);
