/**
 * Reads a request's body as text, chunk by chunk, so a body past `limit`
 * bytes is never held whole: `undefined` then, and the rest is not read.
 * With `timeout`, a body that has not arrived whole within `timeout.ms`
 * rejects with `timeout.error()`.
 */
export async function readAtMost(
  request: Request,
  limit: number,
  timeout?: { ms: number; error: () => Error },
): Promise<string | undefined> {
  if (!request.body) return "";
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired =
    timeout &&
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(timeout.error()), timeout.ms);
    });
  try {
    for (;;) {
      const { done, value } = await (expired ? Promise.race([reader.read(), expired]) : reader.read());
      if (done) break;
      size += value.byteLength;
      if (size > limit) {
        void reader.cancel().catch(() => {});
        return undefined;
      }
      chunks.push(value);
    }
  } catch (error) {
    void reader.cancel().catch(() => {});
    throw error;
  } finally {
    clearTimeout(timer);
  }
  return Buffer.concat(chunks).toString("utf8");
}
