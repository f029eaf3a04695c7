/**
 * The API's docs page in a real browser with no network but loopback: starts
 * the API co-located with our Resonate server on a free port, opens `/docs`
 * in headless Chromium that can reach only 127.0.0.1 and localhost, and
 * checks that the page shows every operation of `/docs/json`, with no
 * request off loopback, no console or script error, no failed request and
 * every stylesheet and script loaded. Saves a screenshot of the page to a
 * temporary file and prints its path.
 *
 *   npm run test:browser      (or: bun harness/browser/main.ts [--chromium <path>] [--timeout <ms>])
 *
 * Needs Debian's Chromium (`apt-get install -y chromium`, /usr/bin/chromium);
 * never downloads a browser. Exits 0 when the page passes, 1 when it does not
 * (or something did not start), 2 when there is no Chromium or a flag is
 * wrong, 130 on Ctrl-C; stops Chromium and the API whichever way it ends.
 * DEBUG=harness echoes the API's output.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exitWithParent } from "../../core/parent-process.ts";
import { parseFlags } from "../cli.ts";
import { startSystem } from "../system.ts";
import { CHROMIUM_DEFAULTS, ChromiumMissingError, launchOfflineChromium } from "./chromium.ts";
import { checkDocsPage, DOCS_PAGE_DEFAULTS, type DocsPageReport, passed } from "./docs-page.ts";

const { values } = parseFlags(
  {
    chromium: { type: "string", default: CHROMIUM_DEFAULTS.executablePath },
    timeout: {
      type: "number",
      min: 1,
      integer: true,
      unit: "ms",
      default: DOCS_PAGE_DEFAULTS.timeoutMs,
    },
  },
  { tool: "browser", usage: "npm run test:browser -- [--chromium <path>] [--timeout <ms>]" },
);

/** Time the check may take beyond the page's own deadline: the screenshot, reading the page (ms). */
const WATCHDOG_MARGIN_MS = 15_000;

const started = performance.now();
const aborter = new AbortController();
// Chromium first: a missing browser is told before anything else starts.
const launching = launchOfflineChromium({ executablePath: values.chromium });
launching.catch(() => {});
const starting = launching.then(() => startSystem({ mode: "colocated", apiPort: 0, signal: aborter.signal }));
starting.catch(() => {});

let stopping: Promise<void> | undefined;
/** Stops Chromium and the system, whichever of them started; the same promise every time. */
function stopAll(): Promise<void> {
  aborter.abort(new Error("stopping"));
  stopping ??= Promise.allSettled([
    launching.then((chromium) => chromium.stop()),
    starting.then((system) => system.stop()),
  ]).then(() => {});
  return stopping;
}
/** The exit code of a signal that arrived: from then on the run only stops. */
let interruptedWith: number | undefined;
async function interrupt(code: number): Promise<never> {
  if (interruptedWith === undefined) console.error("browser: interrupted; stopping");
  interruptedWith ??= code;
  await stopAll();
  process.exit(interruptedWith);
}
process.on("SIGINT", () => void interrupt(130));
process.on("SIGTERM", () => void interrupt(143));
// Killed npm or shell: stop what was started.
exitWithParent(() => interrupt(1), true);

/** What the run prints of `report`: one summary line, then, if it failed, one line per fault. */
function reportLines(report: DocsPageReport, url: string): string[] {
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  const summary = `${report.shown.length} of ${report.expected.length} operations shown on ${url}/docs; ${report.requests} requests, ${report.blocked.length} off loopback; page ready in ${Math.round(report.elapsedMs)} ms, ${seconds} s in all`;
  if (passed(report)) return [`browser: ok: ${summary}`];
  return [
    `browser: FAILED: ${summary}`,
    ...report.missing.map((op) => `  missing: ${op.method} ${op.path}`),
    ...report.blocked.map((url) => `  off loopback: ${url}`),
    ...report.problems.map((problem) => `  ${problem}`),
  ];
}

let code = 1;
try {
  const chromium = await launching;
  const system = await starting;
  const screenshotPath = join(mkdtempSync(join(tmpdir(), "docs-browser-")), "docs.png");
  // A browser that dies mid-check leaves some Playwright calls waiting for ever.
  const watchdogMs = values.timeout + WATCHDOG_MARGIN_MS;
  const report = await Promise.race([
    checkDocsPage(chromium, system.apiUrl, { timeoutMs: values.timeout, screenshotPath }),
    chromium.disconnected.then(() => {
      throw new Error("Chromium exited during the check");
    }),
    Bun.sleep(watchdogMs).then(() => {
      throw new Error(`the check did not finish within ${watchdogMs} ms`);
    }),
  ]);
  for (const line of reportLines(report, system.apiUrl)) console.log(line);
  if (report.screenshot) console.log(`browser: screenshot ${report.screenshot}`);
  code = passed(report) ? 0 : 1;
} catch (error) {
  // After a signal, what failed was stopped under it: nothing to tell.
  if (interruptedWith === undefined) {
    if (error instanceof ChromiumMissingError) {
      console.error(`browser: ${error.message}`);
      code = 2;
    } else {
      console.error(`browser: FAILED: ${(error as Error).message.replace(/^startSystem: /, "")}`);
    }
  }
}
await stopAll();
process.exit(interruptedWith ?? code);
