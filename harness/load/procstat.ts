import { readdirSync, readFileSync } from "node:fs";
import { availableParallelism } from "node:os";

/** Clock ticks per second of /proc's CPU times (`getconf CLK_TCK`, 100 on Linux). */
const TICKS_PER_S = 100;

/**
 * CPU time (s), time its threads were ready to run but had no core (s), and
 * resident memory (bytes) of a process, from /proc; undefined once it is
 * gone. The wait is the sum of every thread's run delay in `schedstat`.
 */
export function sample(pid: number): { cpu_s: number; wait_s: number; rss: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may contain spaces) start at ") ".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]);
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    return { cpu_s: ticks / TICKS_PER_S, wait_s: runDelayS(pid), rss: rssKb * 1024 };
  } catch {
    return undefined;
  }
}

/** The run delay of all of a process's threads (s); 0 where the kernel keeps no schedstat. */
function runDelayS(pid: number): number {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[1] ?? 0);
    } catch {
      // a thread that ended, or no schedstat
    }
  }
  return ns / 1e9;
}

/** Busy and total CPU ticks of the whole machine since boot (the `cpu` line of /proc/stat). */
export function machineTicks(): { busy: number; total: number } | undefined {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0] ?? "";
    // user nice system idle iowait irq softirq steal (guest time is already in user)
    const [user, nice, system, idle, iowait, irq, softirq, steal] = line.split(/\s+/).slice(1, 9).map(Number);
    const busy = (user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0);
    return { busy, total: busy + (idle ?? 0) + (iowait ?? 0) };
  } catch {
    return undefined;
  }
}

/** What `watch` saw over a phase. */
export interface Watched {
  /** Per process: CPU and wait for a core, as % of one core; RSS at the end. */
  processes: { name: string; cpu_pct: number; wait_pct: number; rss_mib: number }[];
  /** The whole machine: its cores and how busy they were, as % of all of them. */
  machine?: { cores: number; busy_pct: number };
}

const pct = (part: number, whole: number) => Math.round((Math.max(0, part) / whole) * 1000) / 10;

/** Watches named processes, and the machine, over a phase. */
export function watch(processes: { name: string; pid: number }[]): () => Watched {
  const start = performance.now();
  const before = new Map(processes.map((p) => [p.pid, sample(p.pid)]));
  const machineBefore = machineTicks();
  return () => {
    const seconds = (performance.now() - start) / 1000;
    const machineAfter = machineTicks();
    const watched: Watched = {
      processes: processes.flatMap((p) => {
        const a = before.get(p.pid);
        const b = sample(p.pid);
        if (!a || !b) return [];
        return [
          {
            name: p.name,
            cpu_pct: pct(b.cpu_s - a.cpu_s, seconds),
            wait_pct: pct(b.wait_s - a.wait_s, seconds),
            rss_mib: Math.round((b.rss / 1048576) * 10) / 10,
          },
        ];
      }),
    };
    if (machineBefore && machineAfter && machineAfter.total > machineBefore.total) {
      watched.machine = {
        cores: availableParallelism(),
        busy_pct: pct(machineAfter.busy - machineBefore.busy, machineAfter.total - machineBefore.total),
      };
    }
    return watched;
  };
}
