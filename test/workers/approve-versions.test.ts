/**
 * `approve_then_ship` at its two versions, registered side by side: new
 * work starts at version 2, which always takes its cooling-off pause (0 ms
 * here, ending at once), so its steps do not depend on SHIP_COOLING_OFF_MS;
 * a job started at version 1 (before a deploy) still runs version 1's code,
 * whose steps after the approval are one fewer with no pause set.
 */
import { describe, expect, test } from "bun:test";
import { Earlier, Orders } from "../../core/functions.ts";
import { waitFor } from "../../harness/index.ts";
import { startColocatedApi } from "../support/colocated-api.ts";
import { signedHeaders } from "../support/secrets.ts";

/** Approves `orderId` by its signed webhook, retried until the workflow waits for it. */
async function approve(api: Awaited<ReturnType<typeof startColocatedApi>>, orderId: string) {
  const body = JSON.stringify({ approved: true, approver: "versions@example.com" });
  await waitFor(
    async () =>
      (await api.request("POST", `/webhooks/approval/${orderId}`, body, signedHeaders(body))).status ===
        200 || undefined,
    { message: `approval of ${orderId} taken` },
  );
}

/** The version a job's root promise records, and whether its third step (`.2`) is the cooling-off timer. */
async function shape(api: Awaited<ReturnType<typeof startColocatedApi>>, jobId: string) {
  const root = await api.resonate.promises.get(jobId);
  const { version } = JSON.parse(atob(root.param?.data as string)) as { version: number };
  const third = await api.resonate.promises.get(`${jobId}.2`);
  return { version, state: root.state, thirdIsTimer: third.tags?.["resonate:timer"] === "true" };
}

describe("approve_then_ship, versions 1 and 2 side by side", () => {
  test("the API starts version 2; a version-1 job still runs version 1's steps; both ship", async () => {
    await using api = await startColocatedApi({ SHIP_COOLING_OFF_MS: "0" });
    const run = crypto.randomUUID().slice(0, 8);
    expect(Orders.approveThenShip.version).toBe(2);

    const current = `v2-${run}`;
    expect((await api.request("POST", `/orders/${current}/approve-and-ship`)).status).toBe(202);
    await approve(api, current);

    // As a job started by the code before the deploy was.
    const old = `v1-${run}`;
    const handle = await api.deps.launcher.begin(Earlier.approveThenShipV1, `ship:${old}`, [old], {
      target: api.deps.targets.orders,
      timeout: 60_000,
    });
    await approve(api, old);
    expect(await handle.result()).toMatchObject({ order_id: old, status: "shipped" });

    await waitFor(
      async () => (await api.resonate.promises.get(`ship:${current}`)).state === "resolved" || undefined,
      {
        message: "the version-2 job shipped",
      },
    );
    expect(await shape(api, `ship:${current}`)).toEqual({
      version: 2,
      state: "resolved",
      thirdIsTimer: true,
    });
    expect(await shape(api, `ship:${old}`)).toEqual({ version: 1, state: "resolved", thirdIsTimer: false });
  });
});
