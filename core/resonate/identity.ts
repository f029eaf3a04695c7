import { randomBytes } from "node:crypto";
import { hostname } from "node:os";

/**
 * A Resonate pid for a process of `role` (`api`, or a worker group) that no
 * other process shares: `<role>-<host>-<process id>-<random>`.
 *
 * The pid names the process's message stream (`/poll/<group>/<pid>`) and
 * the listeners and leases it holds. Two processes with one pid share one
 * stream address: each message for it reaches only one of them, so a
 * result one process awaits is delivered to the other and the first waits
 * it out (two API replicas, each pid 1 in its own container, answered 23 of
 * 60 quotes in time). The host name tells hosts apart, the process id
 * processes on a host, and the random part containers whose process ids
 * and host names repeat (each the first process of its PID namespace, with
 * the same host name).
 */
export function uniquePid(
  role: string,
  host: string = hostname(),
  processId: number = process.pid,
  random: () => string = () => randomBytes(4).toString("hex"),
): string {
  const safeHost = host.replace(/[^A-Za-z0-9-]+/g, "-").slice(0, 63) || "host";
  return `${role}-${safeHost}-${processId}-${random()}`;
}
