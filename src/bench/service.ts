import type { Quote } from "../../core/functions.ts";
import type { QuoteBody, QuoteRequest } from "../quotes/model.ts";
import { toBody, type WaitGate } from "../quotes/service.ts";

/** The same quote computed in this process, undefined for an unknown sku (the pricing group's `baselineQuote`). */
export type BaselineQuote = (sku: string, qty: number, customer?: string) => Quote | undefined;

/** The baseline's answer, shaped as the durable route's; undefined for an unknown sku. */
export function baselineBody(baseline: BaselineQuote, req: QuoteRequest): QuoteBody | undefined {
  const quote = baseline(req.sku, req.qty, req.customer_id);
  return quote && toBody(`baseline:${req.sku}:${req.qty}:${req.customer_id ?? ""}`, quote);
}

/** This process's memory after a full collection where the runtime offers one (Bun), and the quotes waiting. */
export function memoryStats(gate: WaitGate): { rss: number; heap_used: number; waiting: number } {
  globalThis.Bun?.gc(true);
  const mem = process.memoryUsage();
  return { rss: mem.rss, heap_used: mem.heapUsed, waiting: gate.waiting };
}
