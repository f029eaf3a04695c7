import { accessSync, constants, readdirSync, readFileSync } from "node:fs";
import { type Browser, type BrowserContext, chromium } from "playwright-core";
import { tempDir } from "../scope.ts";

/** Defaults of `launchOfflineChromium`. */
export const CHROMIUM_DEFAULTS = {
  /** Debian's `chromium` package; Playwright never downloads a browser here. */
  executablePath: "/usr/bin/chromium",
  /** How long Chromium may take to start (ms). */
  launchTimeoutMs: 30_000,
  /** How long `stop()` waits for Chromium's processes to be gone before it SIGKILLs those still running, and again after (ms). */
  exitGraceMs: 5_000,
} as const;

/** The hosts the browser may reach; every other one is unreachable. */
export const LOOPBACK_HOSTS: readonly string[] = ["127.0.0.1", "localhost"];

/**
 * Flags beyond Playwright's own. Without the background-networking ones
 * Chromium calls Google's services at start, which this check must not;
 * the resolver rule makes every name but loopback unresolvable, so even a
 * request that gets past the route below goes nowhere.
 */
const OFFLINE_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  // Zygote processes outlive the browser by a moment and linger as zombies until init reaps them.
  "--no-zygote",
  `--host-resolver-rules=MAP * ~NOTFOUND, ${LOOPBACK_HOSTS.map((host) => `EXCLUDE ${host}`).join(", ")}`,
];

/** Chromium is not installed where it was looked for. */
export class ChromiumMissingError extends Error {
  constructor(readonly executablePath: string) {
    super(
      `no Chromium at ${executablePath}; install Debian's: apt-get install -y chromium (or name another with --chromium)`,
    );
    this.name = "ChromiumMissingError";
  }
}

export interface OfflineChromiumOptions {
  /** The Chromium binary. Default `CHROMIUM_DEFAULTS.executablePath`. */
  executablePath?: string;
  /** How long Chromium may take to start (ms). Default `CHROMIUM_DEFAULTS.launchTimeoutMs`. */
  launchTimeoutMs?: number;
}

/** A headless Chromium with one context that can reach only loopback. */
export interface OfflineChromium extends AsyncDisposable {
  readonly browser: Browser;
  readonly context: BrowserContext;
  /** The URL of every request off loopback that the context stopped, in order. */
  readonly blocked: readonly string[];
  /** Resolves when the browser is gone, closed or not. */
  readonly disconnected: Promise<void>;
  /** Closes the browser and resolves once all its processes are gone (SIGKILLing any that linger); again, does nothing. */
  stop(): Promise<void>;
}

/** Whether a request to `url` stays on this machine: a loopback host, or no host at all (`data:`, `blob:`, `about:`). */
export function isLoopback(url: URL): boolean {
  if (url.protocol === "data:" || url.protocol === "blob:" || url.protocol === "about:") return true;
  return LOOPBACK_HOSTS.includes(url.hostname);
}

/** A process by pid and start time, so that a pid the system gave out again is not taken for it. */
interface ProcessId {
  pid: number;
  start: string;
}

/** State, process group and start time of `pid` from /proc, or undefined once it is gone. */
function procStat(pid: number): { state: string; group: number; start: string } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name, which may hold spaces: state is field 3, process group 5, start time 22.
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return { state: fields[0] ?? "", group: Number(fields[2]), start: fields[19] ?? "" };
  } catch {
    return undefined;
  }
}

const isGone = (p: ProcessId) => procStat(p.pid)?.start !== p.start;

/**
 * The processes of one Chromium: those whose environment holds `marker`
 * (the browser, and the crash handlers it starts outside its process
 * group), and every process in their process groups (renderers and the
 * other helpers, which get a cleaned environment).
 */
function processesMarked(marker: string): ProcessId[] {
  let pids: number[];
  try {
    pids = readdirSync("/proc")
      .filter((name) => /^\d+$/.test(name))
      .map(Number);
  } catch {
    // No /proc (not Linux): nothing to wait for beyond what Playwright waits for.
    return [];
  }
  const groups = new Set<number>();
  for (const pid of pids) {
    try {
      if (!`\0${readFileSync(`/proc/${pid}/environ`, "latin1")}`.includes(`\0${marker}\0`)) continue;
    } catch {
      continue;
    }
    const stat = procStat(pid);
    if (stat) groups.add(stat.group);
  }
  return pids.flatMap((pid) => {
    const stat = procStat(pid);
    return stat && groups.has(stat.group) ? [{ pid, start: stat.start }] : [];
  });
}

/** Polls until every one of `processes` is gone, or `ms` have passed; the ones still there. */
async function waitGone(processes: ProcessId[], ms: number): Promise<ProcessId[]> {
  const deadline = Date.now() + ms;
  let left = processes.filter((p) => !isGone(p));
  while (left.length > 0 && Date.now() < deadline) {
    await Bun.sleep(50);
    left = left.filter((p) => !isGone(p));
  }
  return left;
}

/**
 * Starts headless Chromium with a fresh profile and one context in which
 * every host but loopback is unreachable twice over: the resolver finds no
 * other name, and a route aborts (and records in `blocked`) every request
 * and WebSocket off loopback before it leaves the browser. Throws
 * `ChromiumMissingError` if there is no binary; closes the browser if the
 * context cannot be set up.
 *
 *   await using chromium = await launchOfflineChromium();
 */
export async function launchOfflineChromium(options: OfflineChromiumOptions = {}): Promise<OfflineChromium> {
  const executablePath = options.executablePath ?? CHROMIUM_DEFAULTS.executablePath;
  try {
    accessSync(executablePath, constants.X_OK);
  } catch {
    throw new ChromiumMissingError(executablePath);
  }
  // Crash reports go here rather than under ~/.config; the variable also marks this browser's processes.
  const crashDir = tempDir("chromium-crash-");
  const marker = `BREAKPAD_DUMP_LOCATION=${crashDir.path}`;
  let browser: Browser;
  try {
    browser = await chromium.launch({
      executablePath,
      headless: true,
      args: OFFLINE_ARGS,
      env: { ...process.env, BREAKPAD_DUMP_LOCATION: crashDir.path },
      timeout: options.launchTimeoutMs ?? CHROMIUM_DEFAULTS.launchTimeoutMs,
      // Playwright's own handlers end this process on Ctrl-C before the caller stops what else it started.
      handleSIGINT: false,
      handleSIGTERM: false,
      handleSIGHUP: false,
    });
  } catch (error) {
    crashDir.remove();
    throw error;
  }
  const opened = browser;
  const disconnected = new Promise<void>((resolve) => opened.once("disconnected", () => resolve()));
  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= (async () => {
      const processes = processesMarked(marker);
      await opened.close().catch(() => {});
      // Closed, the browser is gone, but its helpers may still be exiting, or be zombies that init has yet to reap.
      const running = await waitGone(processes, CHROMIUM_DEFAULTS.exitGraceMs);
      for (const p of running) {
        if (procStat(p.pid)?.state === "Z") continue;
        try {
          process.kill(p.pid, "SIGKILL");
        } catch {
          // exited meanwhile
        }
      }
      await waitGone(running, CHROMIUM_DEFAULTS.exitGraceMs);
      crashDir.remove();
    })();
    return stopped;
  };
  try {
    const context = await opened.newContext({ serviceWorkers: "block" });
    const blocked: string[] = [];
    await context.route(
      (url) => !isLoopback(url),
      (route) => {
        blocked.push(route.request().url());
        return route.abort("blockedbyclient");
      },
    );
    await context.routeWebSocket(
      (url) => !isLoopback(url),
      (socket) => {
        blocked.push(socket.url());
        return socket.close({ code: 1008, reason: "off loopback" });
      },
    );
    return { browser: opened, context, blocked, disconnected, stop, [Symbol.asyncDispose]: stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
