"""Body limits hold while the body streams: chunked uploads, multipart parts, CSRF and JSON bodies."""

import pytest
from sqlmodel import Session, func, select

from app.core.config import get_settings
from app.models import Role, Upload
from tests.conftest import SHARED_DATA

PCLUE = SHARED_DATA / "pclue_train_9.jsonl"
BOUNDARY = "sftlab-test-boundary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


@pytest.fixture
def limits(settings, monkeypatch):
    """Small limits: 1000 bytes of upload, 500 bytes of any other body."""
    monkeypatch.setenv("SFTLAB_UPLOAD_MAX_BYTES", "1000")
    monkeypatch.setenv("SFTLAB_MAX_BODY_BYTES", "500")
    get_settings.cache_clear()
    return get_settings()


class Chunks:
    """A body without Content-Length (a generator), counting how many chunks the server pulled."""

    def __init__(self, parts: list[bytes]) -> None:
        self.parts, self.pulled = parts, 0

    def __iter__(self):
        for part in self.parts:
            self.pulled += 1
            yield part


def multipart(
    data: bytes, *, name: str = "file", filename: str = "x.jsonl", extra: bytes = b""
) -> list[bytes]:
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    return [head, *(data[i : i + 300] for i in range(0, len(data), 300)), extra + tail]


def _no_upload_left(settings, engine) -> None:
    uploads = settings.uploads_dir
    assert not uploads.exists() or list(uploads.iterdir()) == []
    with Session(engine) as s:
        assert s.exec(select(func.count()).select_from(Upload)).one() == 0


def test_a_chunked_multipart_body_past_the_limit_is_cut_off(researcher, limits, engine):
    body = Chunks(multipart(b"y" * 5000))
    r = researcher.post("/api/uploads", content=body, headers={"Content-Type": MULTIPART})
    assert (
        r.status_code == 413 and r.json()["detail"] == "The file is larger than the upload limit of 1000 B."
    )
    _no_upload_left(limits, engine)


def test_a_chunked_multipart_body_within_the_limit_is_written_as_it_streams(researcher, limits, engine):
    data = PCLUE.read_bytes()[:900]
    r = researcher.post(
        "/api/uploads",
        content=Chunks(multipart(data, filename="../a b.jsonl")),
        headers={"Content-Type": MULTIPART},
    )
    assert r.status_code == 201, r.text
    assert r.json()["filename"] == "a b.jsonl" and r.json()["size"] == len(data)
    (stored,) = limits.uploads_dir.iterdir()
    assert stored.read_bytes() == data and stored.suffix == ".upload"


@pytest.mark.parametrize(
    ("parts", "detail"),
    [
        (multipart(b"{}", name="other"), "Send the file in a multipart field named 'file'."),
        ([b"--wrong-boundary\r\nnonsense"], "The multipart body cannot be parsed: Expected boundary"),
    ],
)
def test_a_multipart_body_without_a_file_part_is_refused(researcher, limits, engine, parts, detail):
    r = researcher.post("/api/uploads", content=b"".join(parts), headers={"Content-Type": MULTIPART})
    assert r.status_code == 422 and r.json()["detail"].startswith(detail)
    r = researcher.post("/api/uploads", content=b"x", headers={"Content-Type": "multipart/form-data"})
    assert r.status_code == 422 and "boundary" in r.json()["detail"]
    _no_upload_left(limits, engine)


def test_a_raters_multipart_post_is_refused_before_its_body_is_read(client_as, limits, engine):
    rater = client_as(Role.rater)
    token, rater.csrf = rater.csrf, ""  # first without the X-CSRF-Token header
    body = Chunks(multipart(b"y" * 50_000, extra=b"--" + BOUNDARY.encode() + b"\r\n"))
    r = rater.post("/api/uploads", content=body, headers={"Content-Type": MULTIPART})
    assert r.status_code == 403 and r.json()["detail"] == "Missing or invalid CSRF token."
    assert body.pulled == 0  # the token was not looked for inside the body
    body = Chunks(multipart(b"y" * 500))
    r = rater.post("/api/uploads", content=body, headers={"Content-Type": MULTIPART, "X-CSRF-Token": token})
    assert r.status_code == 403 and r.json()["detail"] == "This needs the researcher role."
    assert body.pulled == 0
    _no_upload_left(limits, engine)


def test_multipart_needs_the_csrf_header_not_a_form_field(researcher, limits, engine):
    field = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{researcher.csrf}\r\n'
    body = field.encode() + b"".join(multipart(b"{}"))
    token, researcher.csrf = researcher.csrf, ""
    r = researcher.post("/api/uploads", content=body, headers={"Content-Type": MULTIPART})
    assert r.status_code == 403 and r.json()["detail"] == "Missing or invalid CSRF token."
    _no_upload_left(limits, engine)
    r = researcher.post(
        "/api/uploads", content=body, headers={"Content-Type": MULTIPART, "X-CSRF-Token": token}
    )
    assert r.status_code == 201, r.text


def test_json_and_form_bodies_are_capped_while_they_stream(researcher, limits):
    big = b'{"policy": "valid", "name": "' + b"n" * 2000 + b'"}'
    expected = "The request body is larger than the limit of 500 B."
    r = researcher.post("/api/uploads/1/import", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["detail"] == expected, r.text
    r = researcher.post(
        "/api/uploads/1/import",
        content=Chunks([big[:300], big[300:]]),
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 413 and r.json()["detail"] == expected
    form = Chunks([b"policy=valid&name=", b"n" * 400, b"n" * 400])
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    r = researcher.post("/uploads/1/import", content=form, headers=headers)
    assert r.status_code == 413 and expected in r.text
    researcher.cookies.set("lang", "zh")
    r = researcher.post("/uploads/1/import", content=Chunks([b"name=", b"n" * 600]), headers=headers)
    assert r.status_code == 413 and "请求内容超过大小上限 500 B。" in r.text
    # under the limit the body reaches the route (which finds no upload 1)
    r = researcher.post("/api/uploads/1/import", json={"policy": "valid"})
    assert r.status_code == 404


def test_an_upload_over_the_body_limit_of_other_routes_is_still_accepted(researcher, limits):
    r = researcher.post("/api/uploads?filename=p.jsonl", content=Chunks([PCLUE.read_bytes()[:450]] * 2))
    assert r.status_code == 201, r.text


def test_save_multipart_stops_pulling_the_body_at_the_limit(limits):
    import anyio

    from app.datasets.uploads import MULTIPART_OVERHEAD, UploadTooLarge, save_multipart

    pulled = 0

    async def body():
        nonlocal pulled
        for part in multipart(b"z" * 1_000_000):
            pulled += 1
            yield part

    async def main():
        with pytest.raises(UploadTooLarge):
            await save_multipart(body(), content_type=MULTIPART, settings=limits)

    anyio.run(main)
    # 300-byte chunks: refused within the first (limit + overhead) bytes, not after the whole megabyte
    assert pulled <= (1000 + MULTIPART_OVERHEAD) // 300 + 2
    assert list(limits.uploads_dir.iterdir()) == []
