import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A temporary folder and the things started in it, stopped in reverse order. */
export interface Scope {
  readonly dir: string;
  /** Registers a stop step; steps run last-registered first. */
  defer(stop: () => Promise<unknown>): void;
  /** Runs every stop step (a failing one does not keep the others from running) and removes the folder. */
  close(): Promise<void>;
}

export function openScope(prefix: string): Scope {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const steps: (() => Promise<unknown>)[] = [];
  return {
    dir,
    defer: (stop) => {
      steps.push(stop);
    },
    close: async () => {
      for (const stop of steps.reverse()) await stop().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
