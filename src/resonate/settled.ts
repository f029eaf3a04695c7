import type { Deps } from "../deps.ts";

/**
 * Resolves when the durable promise `id` settles (through the SDK's listener
 * on this process's message stream, not by polling), when `wake` resolves,
 * or when `signal` aborts; whichever is first. The SDK keeps its one
 * subscription per promise until the promise settles; nothing of the
 * caller's is left after this returns.
 */
export async function untilSettled(
  deps: Deps,
  id: string,
  signal: AbortSignal,
  wake?: Promise<void>,
): Promise<void> {
  if (signal.aborted) return;
  const handle = await deps.resonate.get(id);
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<void>((resolve) => {
    onAbort = resolve;
    signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    await Promise.race([
      handle.result().then(
        () => {},
        () => {},
      ),
      aborted,
      ...(wake ? [wake] : []),
    ]);
  } finally {
    if (onAbort) signal.removeEventListener("abort", onAbort);
  }
}
