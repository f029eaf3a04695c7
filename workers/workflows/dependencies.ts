import type { Context } from "@resonatehq/sdk";

/**
 * The dependencies a group's register function set under `name`
 * (`resonate.setDependency`), as a workflow finds them through `ctx`, so
 * its body reads nothing but its context and arguments.
 */
export function groupDependencies<T>(ctx: Context, name: string): T {
  const deps = ctx.getDependency<T>(name);
  if (!deps)
    throw new Error(`no ${name} dependency: register its functions with the group's register function`);
  return deps;
}
