"""Reading the photo out of a multipart body in memory, checked against Starlette's parser."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.datastructures import Headers, UploadFile
from starlette.formparsers import MultiPartParser

from api.errors import InvalidRequestError
from api.multipart import MAX_FIELDS, parse_form, read_file_field

PHOTO = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40 + b"\r\n--not-the-boundary\r\n" + b"\xff\xd9"


def encode(files: dict | None = None, data: dict | None = None) -> tuple[str, bytes]:
    request = httpx.Request("POST", "http://x/", files=files, data=data)
    return request.headers["content-type"], request.read()


def starlette_form(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    async def parse() -> dict[str, tuple[str | None, bytes]]:
        async def stream():
            yield body

        headers = Headers({"content-type": content_type})
        form = await MultiPartParser(headers, stream()).parse()
        found = {}
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                found[name] = (value.filename, await value.read())
            else:
                found[name] = (None, value.encode())
        return found

    return asyncio.run(parse())


@pytest.mark.parametrize(
    ("files", "data"),
    [
        ({"photo": ("dinner.jpg", PHOTO, "image/jpeg")}, None),
        ({"photo": ("bánh mì.jpg", PHOTO, "image/jpeg")}, {"note": "for lunch", "n": "2"}),
        ({"photo": ("empty.jpg", b"", "image/jpeg")}, None),
        ({"photo": ("big.jpg", PHOTO * 300, "application/octet-stream")}, None),
        ({"other": ("", b"")}, {"photo": "not a file"}),
    ],
    ids=["photo", "photo-and-fields", "empty-file", "1mb-file", "text-photo"],
)
def test_parts_are_what_starlette_reads(files: dict | None, data: dict | None) -> None:
    content_type, body = encode(files, data)

    ours = {part.name: (part.filename, part.data) for part in parse_form(content_type, body)}

    assert ours == starlette_form(content_type, body)


def test_the_photo_comes_back_byte_for_byte_with_its_filename() -> None:
    content_type, body = encode({"photo": ("dinner.jpg", PHOTO, "image/jpeg")}, {"a": "b"})

    assert read_file_field(content_type, body, "photo") == (PHOTO, "dinner.jpg")


@pytest.mark.parametrize(
    ("files", "data"),
    [
        ({"image": ("a.jpg", PHOTO, "image/jpeg")}, None),
        ({"other": ("o.txt", b"1")}, {"photo": "not a file"}),
    ],
    ids=["other-field", "text-field"],
)
def test_no_photo_file_is_a_missing_field(files: dict | None, data: dict | None) -> None:
    content_type, body = encode(files, data)

    with pytest.raises(InvalidRequestError) as raised:
        read_file_field(content_type, body, "photo")

    assert raised.value.errors == [
        {"loc": ["body", "photo"], "msg": "Field required", "type": "missing"}
    ]


def unreadable_forms() -> dict[str, tuple[str, bytes]]:
    two_files = encode({"photo": ("a.jpg", PHOTO, "image/jpeg"), "x": ("b.jpg", b"1", "a/b")})
    many_fields = encode({"photo": ("a.jpg", PHOTO)}, {f"f{i}": "v" for i in range(MAX_FIELDS + 1)})
    content_type, body = encode({"photo": ("a.jpg", PHOTO, "image/jpeg")})
    long = "b" * 300  # python-multipart refuses over 256 with an error of its own: was a 500
    long_boundary = (
        f"multipart/form-data; boundary={long}",
        f'--{long}\r\nContent-Disposition: form-data; name="photo"; filename="a.jpg"\r\n\r\n'
        f"x\r\n--{long}--\r\n".encode(),
    )
    return {
        "boundary-too-long": long_boundary,
        "no-boundary": ("multipart/form-data", body),
        "two-files": two_files,
        "too-many-fields": many_fields,
        "cut-short": (content_type, body[: len(body) // 2]),
        "no-closing-boundary": (content_type, body[: body.rindex(b"--\r\n")]),
        "not-multipart": (content_type, b"this is not a form at all"),
        "empty": (content_type, b""),
    }


@pytest.mark.parametrize("case", list(unreadable_forms()))
def test_unreadable_forms_are_refused_with_a_reason(case: str) -> None:
    content_type, body = unreadable_forms()[case]

    with pytest.raises(InvalidRequestError, match="The multipart form could not be read: "):
        read_file_field(content_type, body, "photo")
