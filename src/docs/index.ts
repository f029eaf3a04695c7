import { type AnyElysia, Elysia, t } from "elysia";
import { notFound } from "../errors.ts";
import { type DocumentInfo, docsAsset, docsPage, openApiDocument } from "./service.ts";

/**
 * `GET /docs` (the page), `/docs/json` (the OpenAPI document) and
 * `/docs/assets/*` (the page's script and style, from this API: the page
 * works with no network but loopback). `app` is the whole API, read once
 * when the document is first asked for.
 */
export const docsRoutes = (app: () => AnyElysia, info: DocumentInfo) => {
  let document: ReturnType<typeof openApiDocument> | undefined;
  return new Elysia({ name: "docs", prefix: "/docs" })
    .get(
      "",
      () => new Response(docsPage(info.title), { headers: { "content-type": "text/html; charset=utf-8" } }),
      { detail: { hide: true } },
    )
    .get(
      "/json",
      () => {
        document ??= openApiDocument(app(), info);
        return document;
      },
      { detail: { hide: true } },
    )
    .get(
      "/assets/:file",
      ({ params }) => {
        const asset = docsAsset(params.file);
        if (!asset) throw notFound(`docs asset ${params.file}`);
        return new Response(asset.body, {
          headers: { "content-type": asset.type, "cache-control": "public, max-age=3600" },
        });
      },
      { params: t.Object({ file: t.String() }), detail: { hide: true } },
    );
};
