import type { Subprocess } from "bun";

/** Harness-wide defaults. */
export const PROCESS_DEFAULTS = {
  /** How long a process may take to print its ready line (ms). */
  readyTimeoutMs: 20_000,
  /** How long `stop()` waits after SIGTERM before it sends SIGKILL (ms). */
  stopGraceMs: 5_000,
  /**
   * How long a child's output is still read once it has exited (ms). On
   * Bun 1.4.5 the output stream of a child that has exited and been reaped
   * sometimes never ends (the read stays pending; about half the runs of
   * test/resonate-server/auth.test.ts on the real server, at its last stop), so
   * `exited` and `stop()` would never resolve.
   */
  drainMs: 2_000,
  /** How many characters of output a handle keeps, at least (it trims back to this at twice as many). */
  outputLimit: 1_000_000,
} as const;

/** Child output is echoed to the test's stderr when `DEBUG` names `harness` (or is `*` / `1`). */
const echo = /(^|,)(harness|\*|1|true)(,|$)/.test(process.env.DEBUG ?? "");

export interface SpawnOptions {
  /** Name used in log lines and errors. */
  name: string;
  /** Command and arguments; `bun` scripts should pass `process.execPath` first. */
  cmd: string[];
  /** Extra environment (merged over this process's environment); a key set to `undefined` is left out. */
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** The process is ready once a line it prints (stdout or stderr) matches this. */
  readyLine?: RegExp;
  readyTimeoutMs?: number;
}

/** A child process that the harness started, and only that process. */
export interface ChildProcess extends AsyncDisposable {
  readonly name: string;
  readonly pid: number;
  /** Resolves with the ready line's match; rejects if the process exits or times out first. */
  readonly ready: Promise<RegExpMatchArray>;
  /** Resolves with the exit code (or 128 + signal number) when the process ends. */
  readonly exited: Promise<number>;
  /** Everything the process printed so far, stdout and stderr interleaved. */
  output(): string;
  /** Sends a signal to this pid (SIGKILL by default); a no-op once it has exited. */
  kill(signal?: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code. */
  stop(graceMs?: number): Promise<number>;
  readonly killed: boolean;
}

export function spawnProcess(opts: SpawnOptions): ChildProcess {
  let output = "";
  let exitedFlag = false;
  let resolveReady!: (m: RegExpMatchArray) => void;
  let rejectReady!: (e: Error) => void;
  const ready = new Promise<RegExpMatchArray>((res, rej) => {
    resolveReady = res;
    rejectReady = rej;
  });
  ready.catch(() => {});
  const readyRe = opts.readyLine;
  let isReady = readyRe === undefined;
  if (isReady) resolveReady([""] as unknown as RegExpMatchArray);

  const child: Subprocess<"ignore", "pipe", "pipe"> = Bun.spawn({
    cmd: opts.cmd,
    cwd: opts.cwd,
    // Children stop by themselves if this process dies without stopping them.
    env: Object.fromEntries(
      Object.entries({ ...process.env, EXIT_WITH_PARENT: "1", ...opts.env }).filter(
        ([, v]) => v !== undefined,
      ),
    ) as Record<string, string>,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });

  const partial = { stdout: "", stderr: "" };
  const append = (text: string, stream: "stdout" | "stderr") => {
    output += text;
    // Trimmed once it holds twice the limit, so a chatty child costs one copy per limit's worth of output.
    if (output.length > 2 * PROCESS_DEFAULTS.outputLimit)
      output = output.slice(-PROCESS_DEFAULTS.outputLimit);
    if (echo) process.stderr.write(text.replace(/^(?=.)/gm, `[${opts.name}] `));
    if (!isReady && readyRe) {
      const lines = (partial[stream] + text).split("\n");
      partial[stream] = lines.pop() ?? "";
      for (const line of lines) {
        const m = line.match(readyRe);
        if (m) {
          isReady = true;
          resolveReady(m);
          break;
        }
      }
    }
  };
  const pump = async (stream: ReadableStream<Uint8Array>, name: "stdout" | "stderr") => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) append(decoder.decode(chunk, { stream: true }), name);
  };
  const pumps = Promise.all([pump(child.stdout, "stdout"), pump(child.stderr, "stderr")]).catch(() => {});

  const exited = child.exited.then(async (code) => {
    exitedFlag = true;
    let drained: Timer | undefined;
    await Promise.race([
      pumps,
      new Promise<void>((resolve) => {
        drained = setTimeout(resolve, PROCESS_DEFAULTS.drainMs);
      }),
    ]);
    clearTimeout(drained);
    if (!isReady) {
      rejectReady(
        new Error(`${opts.name} (pid ${child.pid}) exited with ${code} before it was ready:\n${output}`),
      );
    }
    return code;
  });

  const readyTimeoutMs = opts.readyTimeoutMs ?? PROCESS_DEFAULTS.readyTimeoutMs;
  const timer = setTimeout(() => {
    if (!isReady) {
      rejectReady(
        new Error(`${opts.name} (pid ${child.pid}) not ready after ${readyTimeoutMs} ms:\n${output}`),
      );
    }
  }, readyTimeoutMs);
  ready.finally(() => clearTimeout(timer)).catch(() => {});

  let killed = false;
  const kill = (signal: NodeJS.Signals = "SIGKILL") => {
    if (exitedFlag) return;
    if (signal === "SIGKILL") killed = true;
    try {
      process.kill(child.pid, signal);
    } catch {
      // exited between the check and the signal
    }
  };
  const stop = async (graceMs: number = PROCESS_DEFAULTS.stopGraceMs) => {
    if (exitedFlag) return exited;
    kill("SIGTERM");
    const timeout = setTimeout(() => kill("SIGKILL"), graceMs);
    try {
      return await exited;
    } finally {
      clearTimeout(timeout);
    }
  };

  return {
    name: opts.name,
    pid: child.pid,
    ready,
    exited,
    output: () => output,
    kill,
    stop,
    get killed() {
      return killed;
    },
    [Symbol.asyncDispose]: async () => {
      await stop();
    },
  };
}

/** setpriv (util-linux), where installed. */
const SETPRIV = Bun.which("setpriv");
const warnedNoSetpriv = new Set<string>();

/**
 * A command prefix (`setpriv --pdeathsig SIGKILL --`) under which a program
 * that does not watch its parent is killed by the kernel once this process
 * is gone, even when it was SIGKILLed and could clean nothing up. Without
 * setpriv it is empty, and `who` is warned about once.
 */
export function dieWithParent(who: string): string[] {
  if (SETPRIV) return [SETPRIV, "--pdeathsig", "SIGKILL", "--"];
  if (!warnedNoSetpriv.has(who)) {
    warnedNoSetpriv.add(who);
    console.warn(`${who}: setpriv (util-linux) not found; it outlives this process if this one is killed`);
  }
  return [];
}

/** Asks the OS for a free TCP port on 127.0.0.1. */
export function freePort(): number {
  const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = listener.port;
  listener.stop(true);
  return port;
}
