/**
 * Versions in the typed contract: a function registered at several versions
 * runs, for each promise, the code of the version the promise was started
 * with; the API (`Launcher`) and a workflow's `rpc` start new work at the
 * version the contract names, whatever the caller's options say.
 */
import { describe, expect, test } from "bun:test";
import { type Context, Resonate } from "@resonatehq/sdk";
import { durableFunction, register, rpc } from "../../core/resonate/contract.ts";
import { Launcher } from "../../src/resonate/launcher.ts";

const GreetV1 = durableFunction<[name: string], string>("greet", 1);
const GreetV2 = durableFunction<[name: string], string>("greet", 2);
const Caller = durableFunction<[name: string], string>("call_greet_v1");

/** An in-process client with `greet` registered at both versions, and a workflow that calls version 1. */
function client() {
  const resonate = new Resonate({ group: "versions", pid: `versions-${crypto.randomUUID()}` });
  register(resonate, GreetV1, async (_ctx: Context, name: string) => `v1 hello ${name}`);
  register(resonate, GreetV2, async (_ctx: Context, name: string) => `v2 hello ${name}`);
  register(resonate, Caller, function* (ctx: Context, name: string) {
    // Options that ask for version 2: the contract's version 1 wins.
    return yield* rpc(ctx, GreetV1, [name], ctx.options({ target: "versions", version: 2 }));
  });
  return resonate;
}

describe("versions in the typed contract", () => {
  test("a contract names its version (1 unless said); a version below 1 is refused", () => {
    expect(durableFunction("f")).toEqual({ name: "f", version: 1 });
    expect(GreetV2).toEqual({ name: "greet", version: 2 });
    expect(() => durableFunction("f", 0)).toThrow("f: a version is a whole number from 1, got 0");
  });

  test("the launcher starts work at the contract's version, which the root promise records", async () => {
    const resonate = client();
    try {
      const launcher = new Launcher(resonate, true);
      const id = `greet-${crypto.randomUUID()}`;
      const handle = await launcher.begin(GreetV2, id, ["ada"], { target: "versions", timeout: 10_000 });
      expect(await handle.result()).toBe("v2 hello ada");
      const old = await launcher.begin(GreetV1, `${id}-old`, ["ada"], {
        target: "versions",
        timeout: 10_000,
      });
      expect(await old.result()).toBe("v1 hello ada");
      const root = await resonate.promises.get(id);
      const param = JSON.parse(atob(root.param?.data as string)) as { func: string; version: number };
      expect({ func: param.func, version: param.version }).toEqual({ func: "greet", version: 2 });
    } finally {
      await resonate.stop();
    }
  });

  test("a workflow's rpc starts its callee at the callee contract's version", async () => {
    const resonate = client();
    try {
      const launcher = new Launcher(resonate, true);
      const handle = await launcher.begin(Caller, `caller-${crypto.randomUUID()}`, ["bob"], {
        target: "versions",
        timeout: 10_000,
      });
      expect(await handle.result()).toBe("v1 hello bob");
    } finally {
      await resonate.stop();
    }
  });
});
