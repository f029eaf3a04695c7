/**
 * The part of Deno's runtime API that `main.deno.ts` uses, for this
 * project's type check (which runs `tsc` with Bun's types, not Deno's).
 */
declare namespace Deno {
  interface NetAddr {
    hostname: string;
    port: number;
  }
  interface ServeOptions {
    port: number;
    hostname: string;
    /** SO_REUSEPORT: several processes listen on one port (unstable: `--unstable-net` or `unstable: ["net"]`). */
    reusePort?: boolean;
    onListen?: (addr: NetAddr) => void;
  }
  interface HttpServer {
    readonly addr: NetAddr;
    shutdown(): Promise<void>;
  }
  function serve(
    options: ServeOptions,
    handler: (request: Request) => Response | Promise<Response>,
  ): HttpServer;
}
