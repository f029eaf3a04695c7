/**
 * The ids of the jobs' list entries (src/jobs/entries.ts): a later start
 * sorts first in the byte order `promise.search` pages in, an id gives back
 * its job and start time, and one process's start times increase even when
 * its clock stands still or steps back. (The list over real processes, on
 * either server: test/e2e/jobs.test.ts.)
 */
import { describe, expect, test } from "bun:test";
import { Resonate } from "@resonatehq/sdk";
import { loadConfig, targetsFor } from "../../core/config.ts";
import { makeDeps } from "../../src/deps.ts";
import { entryId, entryOf } from "../../src/jobs/entries.ts";
import { TEST_API_AUTH } from "../support/api-auth.ts";

const byteOrder = (ids: string[]) => ids.toSorted((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));

describe("list entry ids", () => {
  test("a later start sorts first, whatever the job ids", () => {
    const starts = [
      entryId("order:zz", 1_700_000_000_000),
      entryId("ship:aa", 1_700_000_000_001),
      entryId("checkout:u:k", 1_800_000_000_000),
      entryId("order:a", 9_999_999_999_998),
    ];
    expect(byteOrder(starts)).toEqual(starts.toReversed());
  });

  test("an entry id gives back its job (colons and all) and its start; other ids are no entry's", () => {
    expect(entryOf(entryId("checkout:u-1:key:2", 1_764_633_600_123))).toEqual({
      jobId: "checkout:u-1:key:2",
      startedAt: 1_764_633_600_123,
    });
    expect(entryOf(entryId("order:x", 0))).toEqual({ jobId: "order:x", startedAt: 0 });
    for (const id of ["order:1", "jobs:123:order:1", "jobs:12345678901234:order:1", "jobs:1234567890123:"])
      expect(entryOf(id)).toBeUndefined();
  });
});

test("one process's start times increase though its clock stands still or steps back", () => {
  const config = loadConfig({ ...TEST_API_AUTH.env });
  const times = [1_000, 1_000, 1_000, 990, 2_000];
  const resonate = new Resonate({ group: "api", pid: "entries-test" });
  try {
    const deps = makeDeps(resonate, config, targetsFor(config), () =>
      times.length > 1 ? (times.shift() as number) : (times[0] as number),
    );
    expect([1, 2, 3, 4, 5].map(() => deps.startClock())).toEqual([1_000, 1_001, 1_002, 1_003, 2_000]);
  } finally {
    resonate.stop();
  }
});
