/**
 * The one logger of every process (API, workers): JSON lines through pino,
 * `{"level":"info","time":"…","service":"api",…,"msg":"request"}`. Info and
 * below go to stdout, warn and above to stderr, as the plain lines before
 * them did; writes are synchronous, so a line is out before the process
 * can be killed and lines keep their order with `console.log` ones (the
 * ready lines the harness waits for are still printed that way).
 */
import pino from "pino";
import type { LogLevel } from "../config.ts";
import { logIds } from "./tracing.ts";

export type Logger = pino.Logger;

export interface LoggerOptions {
  level: LogLevel;
  /** Fields on every line, e.g. `{ service: "worker", group, pid }`. */
  base: Record<string, string>;
  /** Where lines go; by default stdout (below warn) and stderr (warn and above). */
  destination?: pino.DestinationStream;
}

export function createLogger(opts: LoggerOptions): Logger {
  const destination =
    opts.destination ??
    pino.multistream(
      [
        { level: "trace", stream: pino.destination({ dest: 1, sync: true }) },
        { level: "warn", stream: pino.destination({ dest: 2, sync: true }) },
      ],
      // Each line goes to the last stream whose level it reaches, not to both.
      { dedupe: true },
    );
  return pino(
    {
      level: opts.level,
      base: opts.base,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      // Inside a span (tracing on), every line names it: `trace_id`, `span_id`.
      mixin: () => logIds(),
    },
    destination,
  );
}

/** A logger that writes nothing: the default where no process-wide logger is handed in (route tests). */
export const silentLogger = (): Logger => pino({ level: "silent" });
