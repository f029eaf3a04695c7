import { cancelRequested } from "../../core/jobs.ts";
import type { Caller } from "../auth/service.ts";
import type { Deps } from "../deps.ts";
import { untilSettled } from "../resonate/settled.ts";
import type { Job } from "./model.ts";
import { getJob, jobOf, readJob } from "./service.ts";

const settled = (job: Job) => job.status !== "running" && job.status !== "canceling";

/**
 * `GET /jobs/:id` with `Prefer: wait=<s>`: the job as soon as it settles, or
 * as it is when `budgetMs` runs out or the client goes away.
 */
export async function waitForJob(
  deps: Deps,
  id: string,
  caller: Caller,
  budgetMs: number,
  signal: AbortSignal,
): Promise<Job> {
  const first = await getJob(deps, id, caller);
  if (budgetMs <= 0 || settled(first)) return first;
  const timeout = AbortSignal.timeout(budgetMs);
  // A process that begins to stop answers at once, with the job as it is then.
  await untilSettled(deps, id, AbortSignal.any([signal, timeout, deps.draining]));
  return signal.aborted ? first : getJob(deps, id, caller);
}

/**
 * The statuses a job passes through, in order, each an event whose id is
 * its place: `running` (1), `canceling` (2, once a cancel was asked), then
 * one of `done`, `failed`, `canceled`, `timed_out` (3). They are read from
 * what Resonate keeps (the job's promise and its cancel record), so a
 * stream resumed with `Last-Event-ID` gets exactly the ones after it.
 */
async function statusEvents(deps: Deps, id: string, job: Job): Promise<{ id: number; job: Job }[]> {
  const started = job.started_at === undefined ? {} : { started_at: job.started_at };
  const events: { id: number; job: Job }[] = [{ id: 1, job: { job_id: id, status: "running", ...started } }];
  if (job.status === "canceling" || (settled(job) && (await cancelRequested(deps.resonate.promises, id))))
    events.push({ id: 2, job: { job_id: id, status: "canceling", ...started } });
  if (settled(job)) events.push({ id: 3, job });
  return events;
}

/** A comment line every so often keeps proxies from closing a quiet stream. */
const KEEPALIVE_MS = 15_000;

/** How soon a client comes back after a stream ends (ms): the `retry` every stream starts with. */
export const RECONNECT_MS = 1_000;

/**
 * The last event of a stream whose process is stopping: the client
 * reconnects (to another process, through the same address) after `retry`
 * ms with its Last-Event-ID, and misses nothing.
 */
export const RECONNECT_EVENT = `event: reconnect\nretry: ${RECONNECT_MS}\ndata: ${JSON.stringify({ reason: "draining", retry_ms: RECONNECT_MS })}\n\n`;

/**
 * `GET /jobs/:id/events`: a Server-Sent Events stream of the job's status
 * changes after `lastEventId`, ending after the one that settles it (or
 * after `JOB_EVENTS_MAX_MS`, when the client reconnects); undefined when
 * the client has had the settled job already. It waits on the job's
 * promise (the SDK's listener) and, until `canceling` was sent, on the job
 * signals (a cancel asked through any API process); it stops and lets go of
 * both when the client goes away. When this process begins to stop, the
 * stream sends `RECONNECT_EVENT` and ends. Reads the job first, so an
 * unknown or hidden job is a 404 before any stream starts.
 */
export async function jobEvents(
  deps: Deps,
  id: string,
  caller: Caller,
  lastEventId: number,
  signal: AbortSignal,
): Promise<ReadableStream<Uint8Array> | undefined> {
  let job = await jobOf(deps, id, await readJob(deps, id, caller));
  // The settled job was sent already: nothing more will come, so no stream (a 204 tells an EventSource to stop reconnecting).
  if (settled(job) && lastEventId >= 3) return undefined;
  const encoder = new TextEncoder();
  const stop = new AbortController();
  // A stream also ends after JOB_EVENTS_MAX_MS; its client reconnects with Last-Event-ID and misses nothing.
  const stopped = AbortSignal.any([
    signal,
    stop.signal,
    deps.draining,
    AbortSignal.timeout(deps.config.jobEventsMaxMs),
  ]);
  return new ReadableStream<Uint8Array>({
    async start(controller) {
      let sent = lastEventId;
      // What is known is sent until the client goes away, also once this process is stopping.
      const gone = AbortSignal.any([signal, stop.signal]);
      const send = (text: string) => {
        if (!gone.aborted) controller.enqueue(encoder.encode(text));
      };
      const keepalive = setInterval(() => send(": keep-alive\n\n"), KEEPALIVE_MS);
      try {
        send(`retry: ${RECONNECT_MS}\n\n`);
        for (;;) {
          for (const event of await statusEvents(deps, id, job)) {
            if (event.id <= sent) continue;
            send(`id: ${event.id}\nevent: status\ndata: ${JSON.stringify(event.job)}\n\n`);
            sent = event.id;
          }
          if (settled(job) || stopped.aborted) break;
          const cancelAsked = sent < 2 ? deps.jobSignals.wait(id, stopped) : undefined;
          await untilSettled(deps, id, stopped, cancelAsked);
          if (stopped.aborted) break;
          job = await getJob(deps, id, caller);
        }
        if (deps.draining.aborted && !settled(job)) send(RECONNECT_EVENT);
      } catch (error) {
        send(`event: error\ndata: ${JSON.stringify({ message: (error as Error).message })}\n\n`);
      } finally {
        clearInterval(keepalive);
        stop.abort();
        try {
          controller.close();
        } catch {
          // The client went away and the stream was canceled: nothing to close.
        }
      }
    },
    cancel() {
      stop.abort();
    },
  });
}
