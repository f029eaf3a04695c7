import { closeSync, fdatasyncSync, openSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";

/**
 * How fast the machine is right now: the median time (ms) of a fixed piece
 * of CPU work (JSON round trips) on this thread, measured while the system
 * is idle. On a shared host the same work can take half again as long from
 * one minute to the next; a phase run on a slow spell shows it here, so its
 * latencies can be read against it.
 */
export function calibrationMs(): number {
  const sample = {
    items: Array.from({ length: 50 }, (_, i) => ({ id: `item-${i}`, value: i * 1.5, tags: ["a", "b"] })),
  };
  const once = () => {
    const start = performance.now();
    for (let i = 0; i < 1000; i++) JSON.parse(JSON.stringify(sample));
    return performance.now() - start;
  };
  once();
  const times = Array.from({ length: 5 }, once).sort((a, b) => a - b);
  return Math.round((times[2] as number) * 100) / 100;
}

/**
 * How fast the disk under `dir` makes a write durable right now: the median
 * time (µs) of writing 4 KiB and fdatasync-ing it. Every protocol call the
 * durable route makes waits for such a sync on the server.
 */
export function fsyncCalibrationUs(dir: string): number {
  const path = join(dir, `calibrate-${process.pid}.tmp`);
  const fd = openSync(path, "w");
  const page = Buffer.alloc(4096, 1);
  try {
    const times = Array.from({ length: 21 }, (_, i) => {
      const start = performance.now();
      writeSync(fd, page, 0, page.length, (i % 8) * page.length);
      fdatasyncSync(fd);
      return (performance.now() - start) * 1000;
    }).sort((a, b) => a - b);
    return Math.round(times[10] as number);
  } finally {
    closeSync(fd);
    rmSync(path, { force: true });
  }
}
