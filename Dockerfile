# One image for both roles: `wayfarer serve` (the API, default) and `wayfarer worker` (Celery + Chromium).
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

# Chromium and ffmpeg come from Debian's packages: the image never downloads a browser build.
# Versions are not pinned: they follow the base image's Debian release and its security updates.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends chromium ffmpeg fonts-liberation \
    && rm -rf /var/lib/apt/lists/*

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    WAYFARER_CHROMIUM_PATH=/usr/bin/chromium \
    WAYFARER_DATA_DIR=/data

WORKDIR /app
COPY pyproject.toml alembic.ini ./
COPY app ./app
COPY workers ./workers
COPY migrations ./migrations
# Editable, so app/db/migrate.py finds alembic.ini and migrations/ beside the package.
RUN pip install -e . \
    && useradd --create-home --uid 10001 wayfarer \
    && mkdir -p /data \
    && chown wayfarer:wayfarer /data

USER 10001
EXPOSE 8000
# The API's health; the worker role has no HTTP port (compose turns this check off for it).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["wayfarer", "serve", "--host", "0.0.0.0"]
