"""Artifact storage: one protocol, a local-disk store (default) and an S3-compatible store (boto3)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

from app.platform.settings import Settings


class ArtifactStore(Protocol):
    def put(self, key: str, data: bytes, content_type: str) -> None: ...
    def put_file(self, key: str, path: Path, content_type: str) -> None: ...
    def get(self, key: str, byte_range: tuple[int, int] | None = None) -> bytes:
        """Bytes of the object; byte_range is inclusive (start, end)."""
        ...
    def delete(self, key: str) -> None: ...
    def presigned_url(self, key: str, ttl_seconds: int) -> str | None:
        """A URL any HTTP client can fetch, or None when the store has none (local disk)."""
        ...


class LocalStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"artifact key escapes the store: {key!r}")
        return path

    def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".part")
        tmp.write_bytes(data)
        os.replace(tmp, path)

    def put_file(self, key: str, path: Path, content_type: str) -> None:
        self.put(key, path.read_bytes(), content_type)

    def get(self, key: str, byte_range: tuple[int, int] | None = None) -> bytes:
        with self._path(key).open("rb") as fh:
            if byte_range is None:
                return fh.read()
            fh.seek(byte_range[0])
            return fh.read(byte_range[1] - byte_range[0] + 1)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def presigned_url(self, key: str, ttl_seconds: int) -> str | None:
        return None


class S3Store:
    def __init__(self, settings: Settings) -> None:
        import boto3
        from botocore.config import Config

        def client(endpoint_url: str | None) -> Any:
            return boto3.client(
                "s3",
                endpoint_url=endpoint_url,
                region_name=settings.s3_region,
                aws_access_key_id=settings.s3_access_key_id,
                aws_secret_access_key=settings.s3_secret_access_key,
                config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                              retries={"max_attempts": 5, "mode": "standard"}),
            )

        self.bucket = settings.s3_bucket
        self.client = client(settings.s3_endpoint_url)
        # A signature covers the host: links for clients are signed for the endpoint they reach (signing
        # is local, this client never connects).
        self._link_client = (client(settings.s3_public_endpoint_url) if settings.s3_public_endpoint_url
                             else self.client)

    def check_bucket(self) -> None:
        """Fail start-up with a clear message when the bucket cannot be reached."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            raise RuntimeError(
                f"S3 bucket {self.bucket!r} is not reachable at {self.client.meta.endpoint_url}: {exc}. "
                "Create it or fix WAYFARER_S3_BUCKET / WAYFARER_S3_ENDPOINT_URL."
            ) from exc

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)

    def put_file(self, key: str, path: Path, content_type: str) -> None:
        self.client.upload_file(str(path), self.bucket, key, ExtraArgs={"ContentType": content_type})

    def get(self, key: str, byte_range: tuple[int, int] | None = None) -> bytes:
        extra = {"Range": f"bytes={byte_range[0]}-{byte_range[1]}"} if byte_range else {}
        body = self.client.get_object(Bucket=self.bucket, Key=key, **extra)["Body"]
        return bytes(body.read())

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def presigned_url(self, key: str, ttl_seconds: int) -> str | None:
        return str(self._link_client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=ttl_seconds))


def make_store(settings: Settings) -> ArtifactStore:
    if settings.artifact_store == "s3":
        return S3Store(settings)
    return LocalStore(settings.data_dir / "artifacts")
