import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A fresh folder under the system's temporary folder; leaving a `using` block removes it. */
export interface TempDir extends Disposable {
  readonly path: string;
  /** Removes the folder and everything in it; removing it again does nothing. */
  remove(): void;
}

/** Makes a folder named `<prefix><random>` under the system's temporary folder. */
export function tempDir(prefix: string): TempDir {
  const path = mkdtempSync(join(tmpdir(), prefix));
  const remove = () => rmSync(path, { recursive: true, force: true });
  return { path, remove, [Symbol.dispose]: remove };
}

/** A temporary folder and the things started in it, stopped in reverse order. */
export interface Scope {
  readonly dir: string;
  /** Registers a stop step; steps run last-registered first. */
  defer(stop: () => Promise<unknown>): void;
  /** Runs every stop step (a failing one does not keep the others from running) and removes the folder. */
  close(): Promise<void>;
}

export function openScope(prefix: string): Scope {
  const dir = tempDir(prefix);
  const steps: (() => Promise<unknown>)[] = [];
  return {
    dir: dir.path,
    defer: (stop) => {
      steps.push(stop);
    },
    close: async () => {
      for (const stop of steps.reverse()) await stop().catch(() => {});
      dir.remove();
    },
  };
}
