export interface WaitForOptions {
  /** Give up after this long (ms). */
  timeout?: number;
  /** Pause between attempts (ms). */
  interval?: number;
  /** Said in the error when the deadline passes. */
  message?: string;
}

/**
 * Calls `condition` until it returns a value other than `false`/`undefined`
 * without throwing, and resolves with that value. Past the deadline it
 * rejects with the last error (or last value) as the cause.
 */
export async function waitFor<T>(
  condition: () => T | Promise<T>,
  { timeout = 10_000, interval = 50, message = "condition" }: WaitForOptions = {},
): Promise<Exclude<T, false | undefined>> {
  const deadline = Date.now() + timeout;
  let last: unknown;
  for (;;) {
    try {
      const value = await condition();
      if (value !== false && value !== undefined) return value as Exclude<T, false | undefined>;
      last = new Error(`returned ${String(value)}`);
    } catch (error) {
      last = error;
    }
    if (Date.now() >= deadline) {
      throw new Error(`waitFor: ${message} not met within ${timeout} ms`, { cause: last });
    }
    await Bun.sleep(interval);
  }
}
