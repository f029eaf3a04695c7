import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { Carrier } from "../../harness/fakes/carrier.ts";
import { interceptFakes } from "../../harness/fakes/msw.ts";
import { carrierClient } from "../../workers/third-parties.ts";
import { jsonInit } from "../support/http.ts";
import { tempDir } from "../support/temp.ts";

describe("the fakes mounted with msw in a process", () => {
  test("intercept the worker's HTTP client and keep their ledger, honouring idempotency keys", async () => {
    using dir = tempDir("msw-");
    const carrier = new Carrier({ ledgerPath: join(dir.path, "carrier.db") });
    // No server listens on this address: only interception can answer.
    const stop = interceptFakes([{ baseUrl: "http://carrier.invalid", fetch: carrier.fetch }]);
    try {
      const client = carrierClient("http://carrier.invalid");
      const first = await client.ship("ship:order:m1", "m1");
      const retried = await client.ship("ship:order:m1", "m1");
      expect(retried).toEqual(first);
      expect(carrier.shipmentsFor("m1") as unknown[]).toEqual([first]);
      await expect(
        fetch(
          "http://carrier.invalid/v1/shipments",
          jsonInit("POST", { order_id: "other" }, { "idempotency-key": "ship:order:m1" }),
        ).then((r) => r.status),
      ).resolves.toBe(422);
    } finally {
      stop();
      carrier.close();
    }
  });
});
