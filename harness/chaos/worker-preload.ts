/**
 * Loaded into worker processes that the chaos harness starts
 * (`bun --preload harness/chaos/worker-preload.ts workers/main.ts <group>`).
 * Never loaded in production: without it the probes in the durable
 * functions do nothing, whatever the environment says.
 *
 * - PROBE_LOG=<file>: append `{point, id, pid}` for every probe reached.
 * - CRASH_AT=<point>@<id>[,…] and CRASH_DIR=<dir>: SIGKILL this process the
 *   first time it reaches `point` for workflow `id` (or a child of it; `*`
 *   matches any id). A marker file in CRASH_DIR makes each crash happen once,
 *   so the replacement worker finishes the work.
 * - FAKES_LEDGER_DIR=<dir>: answer PAYMENT_URL and CARRIER_URL in this
 *   process with msw, keeping the fakes' ledgers in that folder, outside the
 *   process that gets killed.
 * - FAKES_WEBHOOK_DELAY_MS=<ms>: how long after a charge its webhook is due
 *   (the provider's default, 200 ms, without it).
 */
import { appendFileSync, closeSync, mkdirSync, openSync } from "node:fs";
import { join } from "node:path";
import { installProbeHook } from "../../workers/probes.ts";
import { Carrier } from "../fakes/carrier.ts";
import { interceptFakes } from "../fakes/msw.ts";
import { PaymentProvider } from "../fakes/payment.ts";
import { crashMatches, parseCrashPoints } from "./crash-points.ts";

const probeLog = process.env.PROBE_LOG;
const crashes = parseCrashPoints(process.env.CRASH_AT ?? "");
const crashDir = process.env.CRASH_DIR;
if (crashes.length > 0 && !crashDir)
  throw new Error("CRASH_AT needs CRASH_DIR (where each crash is marked as done)");
if (crashDir) mkdirSync(crashDir, { recursive: true });

installProbeHook((point, id) => {
  if (probeLog) appendFileSync(probeLog, `${JSON.stringify({ point, id, pid: process.pid })}\n`);
  for (const crash of crashes) {
    if (!crashMatches(crash, point, id)) continue;
    try {
      // Exclusive create: only the first process to get here crashes.
      closeSync(openSync(join(crashDir as string, crash.marker), "wx"));
    } catch {
      continue;
    }
    if (probeLog)
      appendFileSync(probeLog, `${JSON.stringify({ point: "crash", id, at: point, pid: process.pid })}\n`);
    process.kill(process.pid, "SIGKILL");
  }
});

const ledgerDir = process.env.FAKES_LEDGER_DIR;
if (ledgerDir) {
  const paymentUrl = process.env.PAYMENT_URL;
  const carrierUrl = process.env.CARRIER_URL;
  if (!paymentUrl || !carrierUrl) throw new Error("FAKES_LEDGER_DIR needs PAYMENT_URL and CARRIER_URL");
  mkdirSync(ledgerDir, { recursive: true });
  // Webhooks are sent by the harness's dispatcher from the same ledger, not from this process.
  const delay = process.env.FAKES_WEBHOOK_DELAY_MS;
  const payment = new PaymentProvider({
    ledgerPath: join(ledgerDir, "payment.db"),
    webhookUrl: "",
    webhookSecret: "whsec_AAAA",
    ...(delay ? { webhookDelayMs: Number(delay) } : {}),
  });
  const carrier = new Carrier({ ledgerPath: join(ledgerDir, "carrier.db") });
  interceptFakes([
    { baseUrl: paymentUrl, fetch: payment.fetch },
    { baseUrl: carrierUrl, fetch: carrier.fetch },
  ]);
}
