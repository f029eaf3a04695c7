import type { Page } from "playwright-core";
import { waitFor } from "../wait-for.ts";
import type { OfflineChromium } from "./chromium.ts";

/** Defaults of `checkDocsPage`. */
export const DOCS_PAGE_DEFAULTS = {
  /** How long the page may take to show every operation (ms). */
  timeoutMs: 30_000,
} as const;

/** One operation of an OpenAPI document: `GET /orders/{id}`. */
export interface Operation {
  method: string;
  path: string;
}

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
const key = (op: Operation) => `${op.method} ${op.path}`;

/** The part of an OpenAPI document read here. */
export interface OpenApiPaths {
  paths?: Record<string, Record<string, unknown>>;
}

/** Every operation of an OpenAPI document, method upper-case, in the document's order. */
export function operationsOf(document: OpenApiPaths): Operation[] {
  return Object.entries(document.paths ?? {}).flatMap(([path, item]) =>
    METHODS.filter((method) => method in item).map((method) => ({ method: method.toUpperCase(), path })),
  );
}

export interface DocsPageOptions {
  /** How long the page may take to show every operation (ms). Default `DOCS_PAGE_DEFAULTS.timeoutMs`. */
  timeoutMs?: number;
  /** Where to save a screenshot of the whole page, taken whether or not the check passed. */
  screenshotPath?: string;
}

/** What `checkDocsPage` saw. */
export interface DocsPageReport {
  /** The operations of `/docs/json`. */
  expected: Operation[];
  /** The operations the page showed. */
  shown: Operation[];
  /** Expected and not shown. */
  missing: Operation[];
  /** Requests the page made, loopback or not. */
  requests: number;
  /** Requests off loopback that were stopped. */
  blocked: string[];
  /** Console errors, script errors, failed requests, error responses and assets that did not load. */
  problems: string[];
  /** From navigation until every operation was shown, or until the deadline (ms). */
  elapsedMs: number;
  /** Where the screenshot is, if one was asked for and taken. */
  screenshot: string | undefined;
}

/** Whether the report shows a page that works: every operation shown, nothing off loopback, no problem. */
export const passed = (report: DocsPageReport) =>
  report.missing.length === 0 && report.blocked.length === 0 && report.problems.length === 0;

/** The method and path of every operation block Swagger UI rendered. */
function shownOperations(page: Page): Promise<Operation[]> {
  return page.$$eval(".opblock .opblock-summary", (summaries) =>
    summaries.map((summary) => {
      const method = summary.querySelector(".opblock-summary-method")?.textContent ?? "";
      const path = summary.querySelector("[data-path]");
      // Swagger UI breaks long paths with zero-width spaces in the text; data-path keeps the path as written.
      const text = path?.getAttribute("data-path") ?? path?.textContent ?? "";
      return { method: method.trim().toUpperCase(), path: text.replace(/\u200b/g, "").trim() };
    }),
  );
}

/** The parts of a `<link>` element read here (the harness is type-checked without the DOM library). */
type LinkElement = { href: string; sheet: { cssRules: { length: number } } | null };

/** Every stylesheet and script the page names, and whether each stylesheet was parsed into rules. */
async function pageAssets(page: Page): Promise<{ url: string; parsed: boolean | undefined }[]> {
  const stylesheets = await page.$$eval("link[rel=stylesheet][href]", (links) =>
    links.map((element) => {
      const link = element as unknown as LinkElement;
      let rules = 0;
      try {
        rules = link.sheet?.cssRules.length ?? 0;
      } catch {
        // A sheet from another origin hides its rules, which counts as not loaded here.
      }
      return { url: link.href, parsed: rules > 0 };
    }),
  );
  const scripts = await page.$$eval("script[src]", (elements) =>
    elements.map((element) => ({ url: (element as unknown as { src: string }).src, parsed: undefined })),
  );
  return [...stylesheets, ...scripts];
}

/**
 * Opens `<apiUrl>/docs` in a new page of `chromium`'s offline context and
 * waits, up to the deadline, until it shows every operation of
 * `<apiUrl>/docs/json`. Records what would make the page unusable without a
 * network: requests off loopback, console and script errors, failed requests,
 * error responses, and a stylesheet or script of the page that did not load.
 * The page is closed before it returns.
 */
export async function checkDocsPage(
  chromium: OfflineChromium,
  apiUrl: string,
  options: DocsPageOptions = {},
): Promise<DocsPageReport> {
  const timeoutMs = options.timeoutMs ?? DOCS_PAGE_DEFAULTS.timeoutMs;
  const documentResponse = await fetch(`${apiUrl}/docs/json`, { signal: AbortSignal.timeout(timeoutMs) });
  if (!documentResponse.ok) throw new Error(`GET /docs/json answered ${documentResponse.status}`);
  const expected = operationsOf((await documentResponse.json()) as OpenApiPaths);
  if (expected.length === 0) throw new Error("/docs/json lists no operation");

  const blockedBefore = chromium.blocked.length;
  const problems: string[] = [];
  const statuses = new Map<string, number>();
  let requests = 0;
  const page = await chromium.context.newPage();
  try {
    page.on("request", () => requests++);
    page.on("response", (response) => {
      statuses.set(response.url(), response.status());
      if (response.status() >= 400) problems.push(`${response.status()} from ${response.url()}`);
    });
    page.on("requestfailed", (request) => {
      // A request the route stopped is reported as blocked, not again as failed.
      if (chromium.blocked.includes(request.url())) return;
      problems.push(`request failed: ${request.url()} (${request.failure()?.errorText})`);
    });
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(`console error: ${message.text()}`);
    });
    page.on("pageerror", (error) => problems.push(`script error: ${error.message}`));

    const started = performance.now();
    let shown: Operation[] = [];
    const deadline = Date.now() + timeoutMs;
    await page.goto(`${apiUrl}/docs`, { timeout: timeoutMs });
    const expectedKeys = expected.map(key);
    try {
      await waitFor(
        async () => {
          shown = await shownOperations(page);
          const keys = new Set(shown.map(key));
          return expectedKeys.every((k) => keys.has(k));
        },
        { timeout: Math.max(0, deadline - Date.now()), interval: 100, message: "every operation shown" },
      );
    } catch {
      // The report names what is missing.
    }
    const elapsedMs = performance.now() - started;

    for (const asset of await pageAssets(page)) {
      const status = statuses.get(asset.url);
      if (status === undefined) problems.push(`asset not loaded: ${asset.url}`);
      else if (status < 400 && asset.parsed === false) problems.push(`stylesheet has no rules: ${asset.url}`);
    }

    let screenshot: string | undefined;
    if (options.screenshotPath) {
      await page.screenshot({ path: options.screenshotPath, fullPage: true });
      screenshot = options.screenshotPath;
    }
    const shownKeys = new Set(shown.map(key));
    return {
      expected,
      shown,
      missing: expected.filter((op) => !shownKeys.has(key(op))),
      requests,
      blocked: chromium.blocked.slice(blockedBefore),
      problems,
      elapsedMs,
      screenshot,
    };
  } finally {
    await page.close().catch(() => {});
  }
}
