import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Carrier } from "../../harness/fakes/carrier.ts";
import { interceptFakes } from "../../harness/fakes/msw.ts";
import { carrierClient } from "../../workers/third-parties.ts";

describe("the fakes mounted with msw in a process", () => {
  test("intercept the worker's HTTP client and keep their ledger, honouring idempotency keys", async () => {
    const dir = mkdtempSync(join(tmpdir(), "msw-"));
    const carrier = new Carrier({ ledgerPath: join(dir, "carrier.db") });
    // No server listens on this address: only interception can answer.
    const stop = interceptFakes([{ baseUrl: "http://carrier.invalid", fetch: carrier.fetch }]);
    try {
      const client = carrierClient("http://carrier.invalid");
      const first = await client.ship("ship:order:m1", "m1");
      const retried = await client.ship("ship:order:m1", "m1");
      expect(retried).toEqual(first);
      expect(carrier.shipmentsFor("m1") as unknown[]).toEqual([first]);
      await expect(
        fetch("http://carrier.invalid/v1/shipments", {
          method: "POST",
          headers: { "content-type": "application/json", "idempotency-key": "ship:order:m1" },
          body: JSON.stringify({ order_id: "other" }),
        }).then((r) => r.status),
      ).resolves.toBe(422);
    } finally {
      stop();
      carrier.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
