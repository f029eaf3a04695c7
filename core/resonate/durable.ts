import type { Resonate } from "@resonatehq/sdk";

/**
 * The one encoding for data this service hands to Resonate outside a
 * durable function (promise settles from webhooks): base64 of UTF-8 JSON,
 * the SDK's own codec. Raw data would make the awaiting workflow fail to
 * decode and be redelivered in a hot loop.
 */
export function encodeValue(value: unknown): string {
  return Buffer.from(JSON.stringify(value), "utf8").toString("base64");
}

export function decodeValue<T = unknown>(data: string | undefined): T | undefined {
  if (!data) return undefined;
  return JSON.parse(Buffer.from(data, "base64").toString("utf8")) as T;
}

/** The `{func, args}` a workflow was started with, read back from its promise. */
export function invocationOf(param: { data?: string } | undefined): { func?: string; args?: unknown[] } {
  return decodeValue<{ func?: string; args?: unknown[] }>(param?.data) ?? {};
}

export type PromiseState = "pending" | "resolved" | "rejected" | "rejected_canceled" | "rejected_timedout";

/** The SDK's error codes are numbers on `serverError.code`; 404 means the id is unknown. */
export function isNotFound(error: unknown): boolean {
  return (error as { serverError?: { code?: number } } | undefined)?.serverError?.code === 404;
}

/** Reads promise `id`; undefined when the server does not know it. */
export async function findPromise(
  promises: Pick<Resonate["promises"], "get">,
  id: string,
): Promise<Awaited<ReturnType<Resonate["promises"]["get"]>> | undefined> {
  try {
    return await promises.get(id);
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}
