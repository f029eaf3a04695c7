import { Webhook } from "standardwebhooks";

/** One delivery's outcome as the sender saw it. */
export interface Delivery {
  status: number;
  body: string;
  attempt: number;
}

export interface SendWebhookOptions {
  url: string;
  /** Standard Webhooks secret (`whsec_…`). */
  secret: string;
  /** The JSON body, sent byte for byte as signed. */
  body: string;
  /** `webhook-id`; the same id on every retry, as real senders do. Default: a fresh one. */
  id?: string;
  /** Signing time. Default: now. Set it in the past to send a stale delivery. */
  at?: Date;
  /** Sign with this secret instead (a badly signed delivery). */
  signWith?: string;
  /** Retries on non-2xx or a connection error, with exponential backoff from `backoffMs`. Default 0. */
  retries?: number;
  backoffMs?: number;
  /** Longest pause between retries (ms). Default 2000. */
  maxBackoffMs?: number;
}

/** Headers a Standard Webhooks sender puts on a delivery. */
export function webhookHeaders(secret: string, body: string, id: string, at: Date): Record<string, string> {
  return {
    "content-type": "application/json",
    "webhook-id": id,
    "webhook-timestamp": String(Math.floor(at.getTime() / 1000)),
    "webhook-signature": new Webhook(secret).sign(id, at, body),
  };
}

/**
 * Delivers one signed webhook like a real sender: same `webhook-id` on every
 * attempt, a fresh signature per attempt, retries with backoff on non-2xx.
 * Resolves with every attempt's status, last one last.
 */
export async function sendWebhook(opts: SendWebhookOptions): Promise<Delivery[]> {
  const id = opts.id ?? `msg_${crypto.randomUUID().replaceAll("-", "")}`;
  const attempts: Delivery[] = [];
  const retries = opts.retries ?? 0;
  for (let attempt = 1; attempt <= retries + 1; attempt++) {
    let status = 0;
    let text = "";
    try {
      const res = await fetch(opts.url, {
        method: "POST",
        headers: webhookHeaders(opts.signWith ?? opts.secret, opts.body, id, opts.at ?? new Date()),
        body: opts.body,
        signal: AbortSignal.timeout(10_000),
      });
      status = res.status;
      text = await res.text();
    } catch (error) {
      text = (error as Error).message;
    }
    attempts.push({ status, body: text, attempt });
    if (status >= 200 && status < 300) break;
    if (attempt <= retries) {
      await Bun.sleep(Math.min((opts.backoffMs ?? 100) * 2 ** (attempt - 1), opts.maxBackoffMs ?? 2_000));
    }
  }
  return attempts;
}
