import { readFileSync } from "node:fs";

/** CPU time (s) and resident memory (bytes) of a process, from /proc; undefined once it is gone. */
export function sample(pid: number): { cpu_s: number; rss: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may contain spaces) start at ") ".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]);
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    return { cpu_s: ticks / 100, rss: rssKb * 1024 };
  } catch {
    return undefined;
  }
}

/** Watches named processes over a phase: CPU as % of one core, RSS at the end. */
export function watch(processes: { name: string; pid: number }[]) {
  const start = performance.now();
  const before = new Map(processes.map((p) => [p.pid, sample(p.pid)]));
  return () => {
    const seconds = (performance.now() - start) / 1000;
    return processes.flatMap((p) => {
      const a = before.get(p.pid);
      const b = sample(p.pid);
      if (!a || !b) return [];
      return [
        {
          name: p.name,
          cpu_pct: Math.round(((b.cpu_s - a.cpu_s) / seconds) * 1000) / 10,
          rss_mib: Math.round((b.rss / 1048576) * 10) / 10,
        },
      ];
    });
  };
}
