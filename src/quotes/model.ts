import { Type } from "@sinclair/typebox";
import { t } from "elysia";
import { Sku, Text } from "../schemas.ts";

export const QuoteModels = {
  request: t.Object({
    sku: Sku,
    qty: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
    customer_id: t.Optional(t.String({ pattern: "^[A-Za-z0-9_-]{1,64}$" })),
  }),
  quote: t.Object({
    quote_id: t.String(),
    sku: t.String(),
    qty: Type.Integer(),
    customer_id: t.Union([t.String(), t.Null()]),
    unit_price: t.String(),
    discount_bps: Type.Integer(),
    price: t.String({ description: "decimal, in currency units" }),
    price_cents: Type.Integer(),
    currency: t.String(),
  }),
  pending: t.Object({ quote_id: t.String(), status: t.Literal("pending") }),
  params: t.Object({ quote_id: Text({ minLength: 1, maxLength: 200 }) }),
  headers: t.Object({
    prefer: t.Optional(
      t.String({
        description:
          "`wait=<seconds>` (RFC 7240): how long to wait for the quote before a 202, up to the cap",
      }),
    ),
  }),
  readHeaders: t.Object({
    prefer: t.Optional(
      t.String({
        description:
          "`wait=<seconds>` (RFC 7240): wait for a pending quote to be ready, up to QUOTE_MAX_WAIT_MS; unset, the answer is at once",
      }),
    ),
  }),
} as const;

export type QuoteRequest = typeof QuoteModels.request.static;
export type QuoteBody = typeof QuoteModels.quote.static;
