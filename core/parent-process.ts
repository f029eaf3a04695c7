/**
 * With EXIT_WITH_PARENT=1 (what the launcher and the test harness set), calls
 * `shutdown` once the process that started this one is gone, so a launcher
 * that was killed outright leaves no workers, API or server behind.
 */
export function exitWithParent(
  shutdown: () => unknown,
  enabled = process.env.EXIT_WITH_PARENT === "1",
): void {
  if (!enabled) return;
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid !== parent) {
      clearInterval(timer);
      void shutdown();
    }
  }, 500);
  timer.unref();
}
