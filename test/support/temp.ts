import { afterEach } from "bun:test";
import { join } from "node:path";
import { type TempDir, tempDir } from "../../harness/scope.ts";

export { type TempDir, tempDir };

/**
 * For a test file: a maker of state-file paths, each in a temporary folder
 * of its own that is removed after the test that made it.
 */
export function tempDbPaths(prefix: string): () => string {
  const dirs: TempDir[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) dir.remove();
  });
  return () => {
    const dir = tempDir(prefix);
    dirs.push(dir);
    return join(dir.path, "resonate.db");
  };
}
