/**
 * JobSignals: how a job's event streams learn that a cancel was asked,
 * through this API process (at once) or another (by asking the cancel
 * record every CANCEL_POLL_MS while a stream waits, one question per job).
 */
import { describe, expect, test } from "bun:test";
import { waitFor } from "../../harness/index.ts";
import { JobSignals } from "../../src/deps.ts";

/** A JobSignals whose cancel records are `canceled`, counting the questions asked. */
function signals(pollMs = 20) {
  const canceled = new Set<string>();
  const asked: string[] = [];
  const jobSignals = new JobSignals(async (id) => {
    asked.push(id);
    return canceled.has(id);
  }, pollMs);
  return { jobSignals, canceled, asked };
}

describe("JobSignals", () => {
  test("a notify here wakes every waiter of that job at once, and only of that job", async () => {
    const { jobSignals } = signals(60_000);
    const stop = new AbortController();
    const woken: string[] = [];
    const a1 = jobSignals.wait("order:a", stop.signal).then(() => woken.push("a1"));
    const a2 = jobSignals.wait("order:a", stop.signal).then(() => woken.push("a2"));
    void jobSignals.wait("order:b", stop.signal).then(() => woken.push("b"));
    jobSignals.notify("order:a");
    await Promise.all([a1, a2]);
    expect(woken).toEqual(["a1", "a2"]);
    stop.abort();
    await waitFor(() => jobSignals.size === 0 || undefined, { message: "every waiter gone" });
  });

  test("a cancel recorded elsewhere wakes the waiters at the next question, asked once per job", async () => {
    const { jobSignals, canceled, asked } = signals();
    const stop = new AbortController();
    const both = Promise.all([
      jobSignals.wait("order:c", stop.signal),
      jobSignals.wait("order:c", stop.signal),
    ]);
    await waitFor(() => asked.length >= 3 || undefined, { message: "asked a few times" });
    expect(new Set(asked)).toEqual(new Set(["order:c"]));
    canceled.add("order:c");
    await both;
    expect(jobSignals.size).toBe(0);
    expect(jobSignals.polling).toBe(0);
  });

  test("once nothing waits on a job, no question about it stays scheduled", async () => {
    const { jobSignals } = signals(60_000);
    const stop = new AbortController();
    const waiting = jobSignals.wait("order:d", stop.signal);
    expect(jobSignals.polling).toBe(1);
    stop.abort();
    await waiting;
    expect(jobSignals.polling).toBe(0);
    expect(jobSignals.size).toBe(0);
  });

  test("a question that fails is asked again at the next turn", async () => {
    let calls = 0;
    const jobSignals = new JobSignals(async () => {
      calls++;
      if (calls === 1) throw new Error("server down");
      return true;
    }, 10);
    await jobSignals.wait("order:e", new AbortController().signal);
    expect(calls).toBe(2);
  });
});
