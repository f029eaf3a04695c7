/**
 * Named points in the durable functions that a test harness can observe
 * (count how often a step body ran) or make fatal (the process SIGKILLs
 * itself there). In a normal process no hook is installed and `probe` does
 * nothing; only the harness's `--preload` module installs one, so no
 * configuration of a production process can switch it on.
 */
export type ProbeHook = (point: string, id: string) => void;

let hook: ProbeHook | undefined;

/** Installs the hook (harness only). */
export function installProbeHook(fn: ProbeHook): void {
  hook = fn;
}

/** Marks that execution reached `point` for the workflow or step `id`. */
export function probe(point: string, id: string): void {
  if (hook) hook(point, id);
}
