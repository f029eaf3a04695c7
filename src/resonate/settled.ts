import type { Deps } from "../deps.ts";

/**
 * Resolves when the durable promise `id` settles (through the SDK's listener
 * on this process's message stream, not by polling), when `wake` resolves,
 * or when `signal` aborts, whichever is first, also while the handle is
 * still being fetched. The SDK keeps its one subscription per promise until
 * the promise settles; nothing of the caller's is left after this returns.
 */
export async function untilSettled(
  deps: Deps,
  id: string,
  signal: AbortSignal,
  wake?: Promise<void>,
): Promise<void> {
  if (signal.aborted) return;
  // Listened for before anything is awaited: an abort (or `wake`) while the handle is fetched still ends the wait.
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<void>((resolve) => {
    onAbort = () => resolve();
    signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    const handle = await Promise.race([deps.resonate.get(id), aborted, ...(wake ? [wake] : [])]);
    if (!handle) return;
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
