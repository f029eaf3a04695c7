import { describe, expect, test } from "bun:test";
import { uniquePid } from "../../core/resonate/identity.ts";

describe("uniquePid: a process's Resonate pid", () => {
  test("names the role, the host and the process id, with a random part", () => {
    expect(uniquePid("api", "web-7", 4242, () => "0a1b2c3d")).toBe("api-web-7-4242-0a1b2c3d");
  });

  test("two containers whose processes are both pid 1 on hosts of one name still get two pids", () => {
    const pids = new Set(Array.from({ length: 100 }, () => uniquePid("api", "app", 1)));
    expect(pids.size).toBe(100);
    for (const pid of pids) expect(pid).toMatch(/^api-app-1-[0-9a-f]{8}$/);
  });

  test("a host name is cut to what a stream path and a log line take", () => {
    expect(uniquePid("db", "node_1.eu-west.internal", 9, () => "ff")).toBe("db-node-1-eu-west-internal-9-ff");
    expect(uniquePid("db", "x".repeat(300), 9, () => "ff")).toBe(`db-${"x".repeat(63)}-9-ff`);
    expect(uniquePid("db", "", 9, () => "ff")).toBe("db-host-9-ff");
  });
});
