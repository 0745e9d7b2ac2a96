"""``/docs`` served offline: Swagger UI from the installed ``swagger-ui-bundle-v2`` package.

FastAPI's own ``/docs`` loads Swagger UI from a CDN with an inline script, so it
does not render on a machine without network access. When the package is
installed (it is a dependency), its assets are served from ``/docs-assets`` and
the page starts them with ``/static/docs.js``, under a CSP that allows scripts
from this origin only. Without the package, FastAPI's CDN page is kept.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_PATH = "/docs"
ASSETS_PATH = "/docs-assets"
# Swagger UI sets styles at run time and shows inline SVG/data images; scripts stay 'self'.
DOCS_PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
PAGE = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>qa-cite API</title>
  <link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
  <link rel="stylesheet" href="{ASSETS_PATH}/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{ASSETS_PATH}/swagger-ui-bundle.js"></script>
  <script src="/static/docs.js"></script>
</body>
</html>
"""


def swagger_ui_dir() -> Path | None:
    """The folder of the bundled Swagger UI (5.x: reads OpenAPI 3.1), if installed."""
    try:
        from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]
    except ImportError:
        return None
    folder = Path(str(swagger_ui_path))
    return folder if (folder / "swagger-ui-bundle.js").is_file() else None


def install(app: FastAPI, folder: Path) -> None:
    """Serve the assets and the ``/docs`` page (create the app with ``docs_url=None``)."""
    app.mount(ASSETS_PATH, StaticFiles(directory=folder), name="docs-assets")

    @app.get(DOCS_PATH, include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(PAGE, headers={"Content-Security-Policy": DOCS_PAGE_CSP})
