/** A crash point: a probe name and the workflow it applies to (`*` for any). */
export interface CrashPoint {
  point: string;
  target: string;
  /** File name that marks this crash as done. */
  marker: string;
}

/** Parses `point@id,point@id,…` (an id of `*`, or none, means any workflow). */
export function parseCrashPoints(spec: string): CrashPoint[] {
  return spec
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .map((entry) => {
      const at = entry.indexOf("@");
      const point = at === -1 ? entry : entry.slice(0, at);
      const target = at === -1 ? "*" : entry.slice(at + 1);
      return { point, target, marker: `${point}@${target}`.replace(/[^A-Za-z0-9_.@-]/g, "_") };
    });
}

/** True when `point` for `id` is the crash point: same point, and `id` is the target workflow or one of its children. */
export function crashMatches(crash: CrashPoint, point: string, id: string): boolean {
  if (crash.point !== point) return false;
  return crash.target === "*" || id === crash.target || id.startsWith(`${crash.target}.`);
}

/** Formats crash points for CRASH_AT. */
export const crashAt = (points: { point: string; id: string }[]) =>
  points.map((p) => `${p.point}@${p.id}`).join(",");

/**
 * The probes of the cancel path (workers/orders.ts): the step that reads the
 * cancel record, the step that seals it before shipping, and the refund.
 */
export const CANCEL_PROBES = [
  "order.cancel.check",
  "order.cancel.before",
  "order.cancel.after",
  "order.refund.before",
  "order.refund.after",
] as const;

/** CRASH_AT for one crash at each cancel probe, in whichever workflow reaches it first. */
export const cancelCrashes = () => crashAt(CANCEL_PROBES.map((point) => ({ point, id: "*" })));
