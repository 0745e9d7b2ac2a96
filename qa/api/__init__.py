"""The HTTP layer: a FastAPI app over ``QAService``. The core never imports this package."""

from qa.api.app import create_app

__all__ = ["create_app"]
