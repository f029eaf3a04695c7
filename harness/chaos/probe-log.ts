import { existsSync, readFileSync } from "node:fs";

export interface ProbeRecord {
  point: string;
  id: string;
  pid: number;
  /** For `point: "crash"`: the probe at which the process killed itself. */
  at?: string;
}

/** Every probe the workers reached, in order (the PROBE_LOG file). */
export function readProbes(file: string): ProbeRecord[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as ProbeRecord);
}

/** How many times `point` ran for workflow `id` (or any of its children). */
export function probeCount(probes: ProbeRecord[], point: string, id: string): number {
  return probes.filter((p) => p.point === point && (p.id === id || p.id.startsWith(`${id}.`))).length;
}
