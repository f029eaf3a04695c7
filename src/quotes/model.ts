import { t } from "elysia";

export const QuoteModels = {
  request: t.Object({
    sku: t.String({ minLength: 1, maxLength: 64 }),
    qty: t.Integer({ minimum: 1, maximum: 1_000_000 }),
    customer_id: t.Optional(t.String({ pattern: "^[A-Za-z0-9_-]{1,64}$" })),
  }),
  quote: t.Object({
    quote_id: t.String(),
    sku: t.String(),
    qty: t.Integer(),
    customer_id: t.Union([t.String(), t.Null()]),
    unit_price: t.String(),
    discount_bps: t.Integer(),
    price: t.String({ description: "decimal, in currency units" }),
    price_cents: t.Integer(),
    currency: t.String(),
  }),
  pending: t.Object({ quote_id: t.String(), status: t.Literal("pending") }),
  params: t.Object({ quote_id: t.String({ minLength: 1, maxLength: 200 }) }),
} as const;

export type QuoteRequest = typeof QuoteModels.request.static;
export type QuoteBody = typeof QuoteModels.quote.static;
