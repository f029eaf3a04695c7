import { createParser } from "eventsource-parser";
import { countFailure, describeError, type FailedRequests, retryAfterMs } from "./client.ts";

/** What one follower of `GET /jobs/:id/events` received, across every connection. */
export interface StreamObservation {
  job_id: string;
  /** The event ids received, in order, over every connection. */
  ids: number[];
  /** The status the settling event (id 3) carried; undefined if none came. */
  settled?: string;
  /** Connections opened (answered or not). */
  connections: number;
  /** `reconnect` events received: the process was stopping and asked to be left. */
  reconnects: number;
  /** Streams that ended (or broke) without the settling event and without a `reconnect` event. */
  drops: number;
  /** Answers other than a stream or a `5xx` (a `404`, a `204` before id 3, an `error` event): each a violation. */
  errors: string[];
}

/** A broken rule of the event streams. */
export interface StreamViolation {
  job_id: string;
  /** `order`: an id not above the one before (a repeat across reconnects); `unsettled`: no id 3; `status`: id 3's status is not `GET /jobs/:id`'s; `answer`: an unexpected answer. */
  rule: "order" | "unsettled" | "status" | "answer";
  detail: string;
}

export interface FollowOptions {
  apiUrl: string;
  jobId: string;
  /** `Authorization` for the request (the operator's bearer token). */
  authorization: () => Promise<string>;
  /** Stop following at this time (epoch ms) even without the settling event. */
  deadline: number;
  /** Connection errors, `5xx` and streams cut short are counted here. */
  failures?: FailedRequests;
}

/** How long a follower waits before it reconnects when the stream said nothing (`retry`), as an EventSource does (ms). */
const DEFAULT_RETRY_MS = 1_000;

/**
 * Follows a job's event stream like an EventSource client: reads the
 * events, and when the stream ends before the settling event (id 3) (a
 * `reconnect` event from a stopping process, or a dropped connection)
 * waits the stream's `retry` ms and reconnects with `Last-Event-ID`, until
 * it has id 3 or `deadline` passes. Records every id received.
 */
export async function followJobEvents(opts: FollowOptions): Promise<StreamObservation> {
  const url = `${opts.apiUrl}/jobs/${opts.jobId}/events`;
  const seen: StreamObservation = {
    job_id: opts.jobId,
    ids: [],
    connections: 0,
    reconnects: 0,
    drops: 0,
    errors: [],
  };
  let lastId: string | undefined;
  let retryMs = DEFAULT_RETRY_MS;
  while (Date.now() < opts.deadline) {
    seen.connections++;
    let res: Response;
    try {
      res = await fetch(url, {
        headers: {
          accept: "text/event-stream",
          authorization: await opts.authorization(),
          ...(lastId === undefined ? {} : { "last-event-id": lastId }),
        },
        signal: AbortSignal.timeout(Math.max(1, opts.deadline - Date.now())),
      });
    } catch (error) {
      const { kind, what } = describeError(error);
      if (Date.now() >= opts.deadline) break;
      countFailure(opts.failures, kind, "GET", url, what);
      await Bun.sleep(retryMs);
      continue;
    }
    if (res.status !== 200) {
      const text = await res.text().catch(() => "");
      const waitMs = res.status === 503 ? retryAfterMs(res) : undefined;
      if (waitMs !== undefined) {
        await Bun.sleep(waitMs);
        continue;
      }
      if (res.status >= 500) {
        countFailure(opts.failures, "5xx", "GET", url, `${res.status} ${text}`);
        await Bun.sleep(retryMs);
        continue;
      }
      seen.errors.push(`${res.status} after id ${lastId ?? "none"}: ${text.slice(0, 200)}`);
      break;
    }
    let reconnect = false;
    const parser = createParser({
      onRetry: (ms) => {
        retryMs = ms;
      },
      onEvent: (event) => {
        if (event.event === "reconnect") {
          reconnect = true;
          return;
        }
        if (event.id !== undefined) lastId = event.id;
        if (event.event === "error") {
          seen.errors.push(`error event: ${event.data.slice(0, 200)}`);
          return;
        }
        if (event.event !== "status" || event.id === undefined) return;
        const id = Number(event.id);
        seen.ids.push(id);
        if (id === 3) seen.settled = String((JSON.parse(event.data) as { status?: unknown }).status);
      },
    });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let broke: string | undefined;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        parser.feed(decoder.decode(value, { stream: true }));
      }
    } catch (error) {
      broke = describeError(error).what;
    }
    if (seen.settled !== undefined) break;
    if (reconnect) seen.reconnects++;
    else if (Date.now() < opts.deadline) {
      seen.drops++;
      countFailure(
        opts.failures,
        "stream",
        "GET",
        url,
        `stream ended after id ${lastId ?? "none"} without the settled job or a reconnect event${broke ? `: ${broke}` : ""}`,
      );
    }
    await Bun.sleep(retryMs);
  }
  return seen;
}

/**
 * The rules of the followed streams: per job, ids strictly increasing
 * across every reconnect (no repeat), the last one 3, carrying the status
 * that `GET /jobs/:id` gives at the end (`statuses`), and no unexpected
 * answer on the way.
 */
export function checkStreams(
  streams: readonly StreamObservation[],
  statuses: Readonly<Record<string, string>>,
): StreamViolation[] {
  const violations: StreamViolation[] = [];
  for (const s of streams) {
    const out = s.ids.findIndex((id, i) => i > 0 && id <= (s.ids[i - 1] as number));
    if (out >= 0)
      violations.push({ job_id: s.job_id, rule: "order", detail: `ids ${s.ids.join(",")} (at ${out})` });
    if (s.ids.at(-1) !== 3)
      violations.push({
        job_id: s.job_id,
        rule: "unsettled",
        detail: `ids ${s.ids.join(",") || "none"} after ${s.connections} connections, never 3`,
      });
    else if (s.settled !== statuses[s.job_id])
      violations.push({
        job_id: s.job_id,
        rule: "status",
        detail: `event 3 said ${s.settled}, GET /jobs/:id says ${statuses[s.job_id]}`,
      });
    for (const error of s.errors) violations.push({ job_id: s.job_id, rule: "answer", detail: error });
  }
  return violations;
}
