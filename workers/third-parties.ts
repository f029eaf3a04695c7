/** HTTP clients for the third parties the order workflow calls. Every call carries an idempotency key. */
import { traceTags } from "../core/observability/tracing.ts";

export interface ChargeRequest {
  idempotencyKey: string;
  orderId: string;
  amountCents: number;
  currency: string;
  source: string;
  /** The durable promise the provider's webhook settles. */
  callback: string;
}

export interface ChargeReceipt {
  id: string;
  status: string;
}

export interface RefundRequest {
  /** `refund:<workflow id>`: a step re-run after a crash asks for the same refund and gets it back. */
  idempotencyKey: string;
  /** The charge to refund, in full. */
  chargeId: string;
}

export interface RefundReceipt {
  id: string;
  charge: string;
  amount_cents: number;
  status: string;
}

export interface ShipmentReceipt {
  id: string;
  tracking_number: string;
}

export class ThirdPartyError extends Error {
  constructor(
    readonly service: string,
    readonly status: number,
    readonly body: string,
  ) {
    super(`${service} answered ${status}: ${body.slice(0, 300)}`);
    this.name = "ThirdPartyError";
  }
}

async function post<T>(service: string, url: string, idempotencyKey: string, body: unknown): Promise<T> {
  const res = await fetch(url, {
    method: "POST",
    // Inside a traced step, the provider is told the trace (W3C `traceparent`); nothing otherwise.
    headers: { "content-type": "application/json", "idempotency-key": idempotencyKey, ...traceTags() },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  if (!res.ok) throw new ThirdPartyError(service, res.status, text);
  return JSON.parse(text) as T;
}

export function paymentClient(baseUrl: string) {
  return {
    charge: (req: ChargeRequest) =>
      post<ChargeReceipt>("payment provider", `${baseUrl}/v1/charges`, req.idempotencyKey, {
        order_id: req.orderId,
        amount_cents: req.amountCents,
        currency: req.currency,
        source: req.source,
        callback: req.callback,
      }),
    /** Refunds a succeeded charge in full (the provider refuses a second refund of it under another key). */
    refund: (req: RefundRequest) =>
      post<RefundReceipt>("payment provider", `${baseUrl}/v1/refunds`, req.idempotencyKey, {
        charge: req.chargeId,
      }),
  };
}

export function carrierClient(baseUrl: string) {
  return {
    ship: (idempotencyKey: string, orderId: string) =>
      post<ShipmentReceipt>("carrier", `${baseUrl}/v1/shipments`, idempotencyKey, { order_id: orderId }),
  };
}

export type PaymentClient = ReturnType<typeof paymentClient>;
export type CarrierClient = ReturnType<typeof carrierClient>;
