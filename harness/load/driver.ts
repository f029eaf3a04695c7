import { HttpClient } from "../../core/resonate/http-client.ts";
import { Recorder } from "./recorder.ts";

export interface DriveOptions {
  name: string;
  url: string;
  /** Request body for the i-th request. */
  body: (i: number) => unknown;
  headers?: Record<string, string>;
  durationS: number;
  /** Open loop: requests per second, sent on schedule whatever the answers (no coordinated omission). */
  rate?: number;
  /** Closed loop: this many clients, each sending its next request when the last one is answered. */
  concurrency?: number;
  deadlineMs: number;
  /** A request with no answer after this long counts as an error (ms). */
  timeoutMs: number;
  /** Called with every answer's status and body. */
  onAnswer?: (status: number, body: string) => void;
}

/**
 * Drives one route and records each latency from the moment the request
 * was due (open loop) or sent (closed loop). Requests go over kept-alive
 * connections on this thread (a new one whenever all are busy), which
 * leaves more of the machine to the system under test than `fetch` does.
 */
export async function drive(opts: DriveOptions): Promise<Recorder> {
  const recorder = new Recorder(opts.name, opts.deadlineMs);
  const headers = { "content-type": "application/json", ...opts.headers };
  const url = new URL(opts.url);
  const client = new HttpClient(url);
  const send = async (i: number, scheduledAt: number) => {
    try {
      const res = await client.request(
        "POST",
        url.pathname + url.search,
        headers,
        JSON.stringify(opts.body(i)),
        opts.timeoutMs,
      );
      recorder.record(scheduledAt, res.status);
      opts.onAnswer?.(res.status, res.body);
    } catch {
      recorder.record(scheduledAt, "error");
    }
  };

  const start = performance.now();
  const end = start + opts.durationS * 1000;
  if (opts.rate !== undefined) {
    const interval = 1000 / opts.rate;
    const inflight = new Set<Promise<void>>();
    let sent = 0;
    while (performance.now() < end) {
      const due = Math.min(
        Math.floor((performance.now() - start) / interval) + 1,
        Math.ceil((end - start) / interval),
      );
      while (sent < due) {
        const scheduledAt = start + sent * interval;
        const p = send(sent, scheduledAt).finally(() => inflight.delete(p));
        inflight.add(p);
        sent++;
      }
      await Bun.sleep(1);
    }
    await Promise.all(inflight);
  } else {
    let next = 0;
    const lane = async () => {
      while (performance.now() < end) {
        const i = next++;
        await send(i, performance.now());
      }
    };
    await Promise.all(Array.from({ length: opts.concurrency ?? 16 }, lane));
  }
  client.close();
  return recorder;
}
