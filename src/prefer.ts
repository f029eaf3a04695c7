/**
 * How long a route waits: `Prefer: wait=<seconds>` (RFC 7240) within the
 * cap, else `defaultMs` (a quote's deadline; 0 for a job, which answers at
 * once unless asked to wait).
 */
export function waitBudgetMs(prefer: string | null, defaultMs: number, capMs: number): number {
  const match = prefer ? /(?:^|[,;\s])wait\s*=\s*"?(\d+(?:\.\d+)?)"?/i.exec(prefer) : null;
  if (!match?.[1]) return defaultMs;
  const asked = Math.round(Number(match[1]) * 1000);
  return asked > 0 ? Math.min(asked, capMs) : defaultMs;
}
