"""`qa serve`: run the HTTP API and the web page with uvicorn."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from qa.cli.common import fail, settings_with


def serve(
    host: Annotated[
        str | None,
        typer.Option(help="Interface to bind. Default 127.0.0.1 (QA_HOST); 0.0.0.0 for all."),
    ] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Port. Default 8000 (QA_PORT).")
    ] = None,
) -> None:
    """Serve the API and web page; the index loads in the background after start."""
    import uvicorn

    from qa.api import create_app
    from qa.indexing import check_index, verify_index
    from qa.indexing.seeds import seed_files

    settings = settings_with(host=host, port=port)
    if settings.vector_store == "faiss" or settings.auto_rebuild:
        seed_files(settings.seeds_dir)  # no seeds: fail now, not in the background
    # else a replica of a shared (Milvus) index: it needs no local seeds at all.
    if not settings.auto_rebuild:
        # Damage is refused before start: found only by the background load, it would
        # leave a server that is up but never ready.
        reasons = check_index(settings) or verify_index(settings)
        if reasons:
            fail(
                "the index cannot be served and QA_AUTO_REBUILD is off: "
                + "; ".join(reasons)
                + ". Run `qa index` first."
            )
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    app = create_app(settings)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,  # one format for uvicorn and qa: the basicConfig above
        log_level=settings.log_level.lower(),
        access_log=False,  # qa.access logs one line per request, with its id
        server_header=False,  # do not advertise the server software
        timeout_graceful_shutdown=10,
    )
