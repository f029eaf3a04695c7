import { http, passthrough, type RequestHandler } from "msw";
import { setupServer } from "msw/node";

/** A fake third party: its base URL and its fetch handler. */
export interface FakeService {
  baseUrl: string;
  fetch: (req: Request) => Promise<Response> | Response;
}

/** msw handlers that answer every request under each fake's base URL with the fake's own fetch handler. */
export function mswHandlers(fakes: FakeService[]): RequestHandler[] {
  return fakes.map((fake) =>
    http.all(`${fake.baseUrl.replace(/\/+$/, "")}/*`, ({ request }) => fake.fetch(request)),
  );
}

/**
 * Intercepts this process's outbound `fetch` to the fakes' base URLs (msw 2;
 * msw 3 does not intercept on Bun). Everything else passes through untouched.
 * Returns a function that stops intercepting.
 */
export function interceptFakes(fakes: FakeService[]): () => void {
  const server = setupServer(
    ...mswHandlers(fakes),
    http.all("*", () => passthrough()),
  );
  server.listen({ onUnhandledRequest: "bypass" });
  return () => server.close();
}
