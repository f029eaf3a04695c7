/**
 * The order workers' payment client against the fake provider: refunds are
 * idempotent by key (Stripe's rules: same key, same refund; same key, other
 * body, 422), only a succeeded charge is refunded, in full and once; and a
 * test can hold an order's webhooks back, from another instance on the
 * same ledger, as the recovery suite does across processes.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { DECLINED_SOURCE, PaymentProvider } from "../../harness/fakes/payment.ts";
import { paymentClient, ThirdPartyError } from "../../workers/third-parties.ts";
import { jsonInit } from "../support/http.ts";
import { type TempDir, tempDir } from "../support/temp.ts";

let dir: TempDir;
let provider: PaymentProvider;
let server: ReturnType<typeof Bun.serve>;
/** The webhook bodies the provider delivered, in order. */
let delivered: { order_id: string }[];
let receiver: ReturnType<typeof Bun.serve>;

beforeEach(() => {
  dir = tempDir("payment-refunds-");
  delivered = [];
  receiver = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: async (req) => {
      delivered.push(((await req.json()) as { data: { order_id: string } }).data);
      return new Response(null, { status: 204 });
    },
  });
  provider = new PaymentProvider({
    ledgerPath: join(dir.path, "payment.db"),
    webhookUrl: `http://127.0.0.1:${receiver.port}/`,
    webhookSecret: `whsec_${Buffer.from("refund-tests-secret-0123456789ab").toString("base64")}`,
    webhookDelayMs: 0,
  });
  server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: provider.fetch });
});

afterEach(async () => {
  await server.stop(true);
  await receiver.stop(true);
  provider.close();
  dir.remove();
});

const client = () => paymentClient(`http://127.0.0.1:${server.port}`);
const charge = (orderId: string, source = "tok_visa") =>
  client().charge({
    idempotencyKey: `charge:order:${orderId}`,
    orderId,
    amountCents: 1_234,
    currency: "USD",
    source,
    callback: `order:${orderId}.2`,
  });
const refundRequest = (key: string, body: unknown) =>
  fetch(`http://127.0.0.1:${server.port}/v1/refunds`, jsonInit("POST", body, { "idempotency-key": key }));

/** The provider's answer to a refused call: its status and error type. */
async function refusal(call: Promise<unknown>) {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof ThirdPartyError)) throw new Error(`expected a refusal, got ${String(error)}`);
  return { status: error.status, type: (JSON.parse(error.body) as { error: { type: string } }).error.type };
}

describe("refunds at the fake payment provider", () => {
  test("refunds a succeeded charge in full; the same key gives the same refund back", async () => {
    const paid = await charge("r-1");
    const first: unknown = await client().refund({ idempotencyKey: "refund:order:r-1", chargeId: paid.id });
    expect(first).toEqual({
      id: expect.stringMatching(/^re_/),
      idempotency_key: "refund:order:r-1",
      charge: paid.id,
      order_id: "r-1",
      amount_cents: 1_234,
      currency: "USD",
      status: "succeeded",
      created_at: expect.any(Number),
    });
    const again = await refundRequest("refund:order:r-1", { charge: paid.id });
    expect(again.status).toBe(200);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(await again.json()).toEqual(first);
    expect(provider.refundsFor("r-1") as unknown[]).toEqual([first]);
    expect(provider.refunds()).toHaveLength(1);
  });

  test("a used key with another body is a 422, and refunds nothing", async () => {
    const a = await charge("r-2");
    const b = await charge("r-3");
    await client().refund({ idempotencyKey: "refund:order:r-2", chargeId: a.id });
    const reused = await refundRequest("refund:order:r-2", { charge: b.id });
    expect(reused.status).toBe(422);
    expect(await reused.json()).toMatchObject({ error: { type: "idempotency_error" } });
    expect(provider.refundsFor("r-3")).toEqual([]);
  });

  test("a charge is refunded once: a second refund under another key is refused", async () => {
    const paid = await charge("r-4");
    await client().refund({ idempotencyKey: "refund:order:r-4", chargeId: paid.id });
    expect(await refusal(client().refund({ idempotencyKey: "other-key", chargeId: paid.id }))).toEqual({
      status: 400,
      type: "charge_already_refunded",
    });
    expect(provider.refundsFor("r-4")).toHaveLength(1);
  });

  test("a declined charge, an unknown one, or a request without a key or a charge is refused", async () => {
    const declined = await charge("r-5", DECLINED_SOURCE);
    expect(await refusal(client().refund({ idempotencyKey: "k-5", chargeId: declined.id }))).toEqual({
      status: 400,
      type: "charge_not_refundable",
    });
    expect(await refusal(client().refund({ idempotencyKey: "k-6", chargeId: "ch_nope" }))).toEqual({
      status: 404,
      type: "resource_missing",
    });
    const keyless = await fetch(
      `http://127.0.0.1:${server.port}/v1/refunds`,
      jsonInit("POST", { charge: "x" }),
    );
    expect(keyless.status).toBe(400);
    expect((await refundRequest("k-7", {})).status).toBe(400);
    expect(provider.refunds()).toEqual([]);
  });

  test("GET /v1/refunds lists them, by order", async () => {
    const paid = await charge("r-8");
    const refund = await client().refund({ idempotencyKey: "refund:order:r-8", chargeId: paid.id });
    const listed = await fetch(`http://127.0.0.1:${server.port}/v1/refunds?order_id=r-8`);
    expect(await listed.json()).toEqual({ data: [refund] });
  });
});

describe("held webhooks", () => {
  test("an order's webhooks wait while held, through any instance on the ledger, and go once released", async () => {
    const other = new PaymentProvider({
      ledgerPath: join(dir.path, "payment.db"),
      webhookUrl: "",
      webhookSecret: "whsec_AAAA",
    });
    try {
      other.holdWebhooks("h-1");
      await charge("h-1");
      await charge("h-2");
      await provider.deliverDue();
      expect(delivered.map((d) => d.order_id)).toEqual(["h-2"]);
      other.releaseWebhooks("h-1");
      await provider.deliverDue();
      expect(delivered.map((d) => d.order_id)).toEqual(["h-2", "h-1"]);
    } finally {
      other.close();
    }
  });
});
