# One image for both roles: `wayfarer serve` (the API, default) and `wayfarer worker` (Celery + Chromium).
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

# Chromium comes from Debian's packages: the image never downloads a browser build. No Debian ffmpeg:
# the imageio-ffmpeg wheel brings the one browser sessions' recorder uses (workers/agent/browser.py).
# libatomic1: Playwright's bundled node driver links it, and slim bases do not all ship it; the list is
# explicit rather than relying on what a base image happens to contain.
# Versions are not pinned: they follow the base image's Debian release and its security updates.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends chromium fonts-liberation libatomic1 \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    WAYFARER_CHROMIUM_PATH=/usr/bin/chromium \
    WAYFARER_DATA_DIR=/data

WORKDIR /app
COPY pyproject.toml alembic.ini ./
# The dependencies first, in a layer a code change does not invalidate: the package is installed with
# empty modules, and the code copied over them afterwards. Editable, so the code copied is what runs and
# app/db/migrate.py finds alembic.ini and migrations/ beside the package.
RUN mkdir app workers \
    && touch app/__init__.py workers/__init__.py \
    && pip install -e . \
    && useradd --create-home --uid 10001 wayfarer \
    && mkdir -p /data \
    && chown wayfarer:wayfarer /data
COPY app ./app
COPY workers ./workers
COPY migrations ./migrations

USER 10001
EXPOSE 8000
# The API's health; the worker role has no HTTP port (compose turns this check off for it).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["wayfarer", "serve", "--host", "0.0.0.0"]
