"""Images from local files: an ``image_url`` content part that names a file instead of a URL.

In a spec the part reads ``{type: image_url, image_url: {path: "images/{{ file }}"}}``; the path
is a template over the case's variables, relative to the file holding the part and inside the
project (the same rule as schema ``$ref`` files). At render time the file is read, its type is
told from its first bytes (PNG, JPEG, WebP or GIF, never from its name), and the part goes on
the wire exactly as the API defines it:
``{type: image_url, image_url: {url: "data:image/png;base64,..."}}``.

Records keep a reference instead of the base64 text (``recorded_body``): the file's path, byte
size, sha256 and type. ``image_problems`` checks every case of a spec before anything is sent:
missing files, files that are not images, and each provider's documented limits
(``IMAGE_LIMITS``). Reading an image's type and size needs only its header, so checking 1,000
images does not read 1,000 files whole.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from runner.errors import Problem, RenderError
from runner.spec.objects import ImagePart, Provider
from runner.spec.project import display_path, find_project_root, resolve_inside

PNG, JPEG, WEBP, GIF = "image/png", "image/jpeg", "image/webp", "image/gif"
IMAGE_TYPES = (PNG, JPEG, WEBP, GIF)


# ---- limits per provider


@dataclass(frozen=True)
class ImageLimits:
    """What a provider takes in a request with base64 images (None: no documented limit)."""

    provider: str
    types: tuple[str, ...] = IMAGE_TYPES
    max_request_bytes: int | None = None  # the whole request body as sent, base64 included
    max_image_bytes: int | None = None  # one image file
    max_total_image_bytes: int | None = None  # all image files of one request
    max_pixels: int | None = None  # width x height of one image
    max_images: int | None = None  # image parts in one request
    animated_gif: bool = True  # whether a GIF may have more than one frame


MB = 1_000_000  # the providers write "4MB", "20MB": read as decimal megabytes, the safer side

# Groq: https://console.groq.com/docs/vision, as read on 2026-12-03 for the Llama 4 models it
# then served (its vision model is qwen/qwen3.8-27b since, checked 2026-12-08): a request with
# base64 images up to 4MB (else 413), 33 megapixels (33,177,600 pixels) per image, at most 5
# images per request. The page lists no formats.
# OpenAI: https://platform.openai.com/docs/guides/images-vision: PNG, JPEG, WebP, non-animated
# GIF; up to 20MB per image, 50MB of image bytes and 500 images per request.
IMAGE_LIMITS: Mapping[str, ImageLimits] = {
    "groq": ImageLimits("groq", max_request_bytes=4 * MB, max_pixels=33_177_600, max_images=5),
    "openai": ImageLimits(
        "openai",
        max_image_bytes=20 * MB,
        max_total_image_bytes=50 * MB,
        max_images=500,
        animated_gif=False,
    ),
}


# The most runner reads of one image file, for every provider (the offline one and custom
# endpoints too, which document no limit): OpenAI's per-image limit above ("Up to 20MB per
# image", images-vision guide, checked 2026-12-08), the largest any built-in provider takes.
# The size is checked before the file is read, so a huge file with an image header never gets
# into memory.
MAX_IMAGE_BYTES = 20 * MB


def limits_for(provider: Provider | None) -> ImageLimits:
    """The image limits of a spec's provider; none but the four types for any other."""
    name = "groq" if provider is None else provider.name
    if provider is not None and provider.base_url is not None:
        return ImageLimits(name)
    return IMAGE_LIMITS.get(name) or ImageLimits(name)


# ---- reading image headers


@dataclass(frozen=True)
class ImageInfo:
    """An image file's type and size, read from its header."""

    media_type: str
    width: int
    height: int
    size: int


class NotAnImage(Exception):
    """The file is not a PNG, JPEG, WebP or GIF image (or its header is broken)."""


def inspect_image(path: Path) -> ImageInfo:
    """The type (from the file's first bytes), dimensions and byte size of an image file."""
    try:
        return _inspect(path)
    except struct.error:  # a header cut short
        raise NotAnImage("its header is cut short (the file is damaged or not whole)") from None


def _inspect(path: Path) -> ImageInfo:
    with open(path, "rb") as handle:
        head = handle.read(32)
        size = path.stat().st_size
        if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
            width, height = struct.unpack(">II", head[16:24])
            return ImageInfo(PNG, width, height, size)
        if head[:6] in (b"GIF87a", b"GIF89a") and len(head) >= 10:
            width, height = struct.unpack("<HH", head[6:10])
            return ImageInfo(GIF, width, height, size)
        if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            width, height = _webp_size(head + handle.read(32))
            return ImageInfo(WEBP, width, height, size)
        if head[:3] == b"\xff\xd8\xff":
            handle.seek(2)
            width, height = _jpeg_size(handle)
            return ImageInfo(JPEG, width, height, size)
    raise NotAnImage("it is not a PNG, JPEG, WebP or GIF image")


def _webp_size(head: bytes) -> tuple[int, int]:
    kind = head[12:16]
    if kind == b"VP8 " and head[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", head[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if kind == b"VP8L" and head[20:21] == b"\x2f":
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if kind == b"VP8X" and len(head) >= 30:
        width = int.from_bytes(head[24:27], "little") + 1
        return width, int.from_bytes(head[27:30], "little") + 1
    raise NotAnImage("its WebP header is broken")


def gif_frames(path: Path, stop_at: int = 2) -> int:
    """How many frames a GIF has (counting stops at ``stop_at``), walking its blocks."""
    with open(path, "rb") as handle:
        header = handle.read(13)
        if len(header) < 13:
            return 0
        if header[10] & 0x80:
            handle.seek(3 << ((header[10] & 0x07) + 1), 1)  # the global colour table
        frames = 0
        while frames < stop_at:
            introducer = handle.read(1)
            if introducer == b"\x2c":  # an image
                descriptor = handle.read(9)
                if len(descriptor) < 9:
                    break
                frames += 1
                if descriptor[8] & 0x80:
                    handle.seek(3 << ((descriptor[8] & 0x07) + 1), 1)
                handle.read(1)  # LZW minimum code size
            elif introducer == b"\x21":  # an extension: its label, then sub-blocks
                handle.read(1)
            else:
                break  # the trailer, or the end of a broken file
            _skip_sub_blocks(handle)
        return frames


def _skip_sub_blocks(handle: BinaryIO) -> None:
    while (size := handle.read(1)) and size[0]:
        handle.seek(size[0], 1)


# Start-of-frame markers, which hold a JPEG's dimensions (not DHT C4, JPG C8, DAC CC).
_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_size(handle: BinaryIO) -> tuple[int, int]:
    """Walk the JPEG's segments to its frame header, seeking over the others."""
    while True:
        marker = handle.read(2)
        while marker[:1] == b"\xff" and marker[1:2] == b"\xff":  # fill bytes
            marker = marker[1:] + handle.read(1)
        if len(marker) < 2 or marker[0] != 0xFF:
            raise NotAnImage("its JPEG header is broken")
        code = marker[1]
        if code in (0x01, *range(0xD0, 0xD8)):
            continue  # markers without a length
        length_bytes = handle.read(2)
        if len(length_bytes) < 2:
            raise NotAnImage("its JPEG header is broken")
        length = struct.unpack(">H", length_bytes)[0]
        if code in _JPEG_FRAMES:
            frame = handle.read(5)
            if len(frame) < 5:
                raise NotAnImage("its JPEG header is broken")
            height, width = struct.unpack(">HH", frame[1:5])
            return width, height
        if code == 0xD9 or length < 2:
            raise NotAnImage("its JPEG has no frame header")
        handle.seek(length - 2, 1)


# ---- rendering


@dataclass(frozen=True)
class ImageFile:
    """A local image as one request used it: where it is and what it was (never its bytes)."""

    path: str  # relative to the project folder, with '/'
    media_type: str
    size: int
    sha256: str
    detail: str | None = None

    def reference(self) -> dict[str, Any]:
        """The part's ``image_url`` as a record keeps it, in place of the base64 text."""
        ref: dict[str, Any] = {
            "path": self.path,
            "bytes": self.size,
            "sha256": self.sha256,
            "media_type": self.media_type,
        }
        if self.detail is not None:
            ref["detail"] = self.detail
        return ref


# (message index, part index) of a local image in a request body, and the image.
ImageUse = tuple[int, int, ImageFile]


class ImageError(RenderError):
    """A local image could not be used for a case: missing, not an image, outside the project."""


def resolve_image(part: ImagePart, rendered_path: str) -> tuple[Path, str]:
    """The image file a part names (its ``path:`` rendered for a case), and its path in the
    project."""
    name = rendered_path.strip()
    root = find_project_root(part.folder)
    try:
        target = resolve_inside(root, part.folder, name) if name else None
    except (ValueError, OSError) as exc:
        raise ImageError(
            problem_at(part, f"the image path {name!r} is not a usable path: {exc}")
        ) from None
    if target is None:
        raise ImageError(
            problem_at(
                part,
                f"the image path '{name}' is outside the project folder {root}"
                if name
                else "the image path is empty",
                "keep images inside the project; the path is relative to the spec file",
            )
        )
    return target, target.relative_to(root).as_posix()


def as_written(part: ImagePart, target: Path) -> str:
    """An image's path as the spec gives it: relative to the folder of the file holding the
    part, which is what messages show (the hint says paths are relative to the spec)."""
    return Path(os.path.relpath(target, part.folder)).as_posix()


def render_image_part(part: ImagePart, rendered_path: str) -> tuple[dict[str, Any], ImageFile]:
    """The wire form of one local image part (a base64 data URL), and the image it read."""
    target, relative = resolve_image(part, rendered_path)
    info = inspect_part(part, target, relative)
    if info.size > MAX_IMAGE_BYTES:
        raise ImageError(too_large(part, as_written(part, target), info.size))
    try:
        with open(target, "rb") as handle:
            data = handle.read(MAX_IMAGE_BYTES + 1)  # never more, if it grew since
    except OSError as exc:
        raise ImageError(problem_at(part, f"cannot read the image {relative}: {exc}")) from None
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageError(too_large(part, as_written(part, target), len(data)))
    image = ImageFile(
        relative, info.media_type, len(data), hashlib.sha256(data).hexdigest(), part.detail
    )
    url = f"data:{info.media_type};base64," + base64.b64encode(data).decode("ascii")
    return wire_part(url, part.detail), image


def wire_part(url: str, detail: str | None) -> dict[str, Any]:
    image_url: dict[str, Any] = {"url": url}
    if detail is not None:
        image_url["detail"] = detail
    return {"type": "image_url", "image_url": image_url}


def inspect_part(part: ImagePart, target: Path, relative: str) -> ImageInfo:
    shown = as_written(part, target)
    try:
        return inspect_image(target)
    except FileNotFoundError:
        raise ImageError(
            problem_at(
                part,
                f"image file not found: {shown}",
                f"looked for {display_path(target)}, as the path is relative to the spec file",
            )
        ) from None
    except IsADirectoryError:
        raise ImageError(problem_at(part, f"the image path {shown} is a folder")) from None
    except NotAnImage as exc:
        raise ImageError(
            problem_at(part, f"{shown} is not an image: {exc}", "use PNG, JPEG, WebP or GIF files")
        ) from None
    except OSError as exc:
        raise ImageError(
            problem_at(part, f"cannot read the image {shown}: {exc.strerror}")
        ) from None


def recorded_body(body: dict[str, Any], images: tuple[ImageUse, ...]) -> dict[str, Any]:
    """``body`` with each local image's data URL replaced by a reference to its file."""
    if not images:
        return body
    messages = [dict(m) for m in body["messages"]]
    for message_index, part_index, image in images:
        message = messages[message_index]
        content = list(message["content"])
        content[part_index] = {"type": "image_url", "image_url": image.reference()}
        message["content"] = content
        messages[message_index] = message
    return {**body, "messages": messages}


def too_large(part: ImagePart, shown: str, size: int) -> Problem:
    """The problem of an image over ``MAX_IMAGE_BYTES``, whatever the provider."""
    return problem_at(
        part,
        f"{shown} is {size:,} bytes; runner reads images of at most {MAX_IMAGE_BYTES:,} bytes",
        "make the image smaller",
    )


def problem_at(part: ImagePart, message: str, hint: str | None = None) -> Problem:
    template = part.path
    return Problem(template.path, message, template.line, template.column, hint)


# ---- checks before sending (runner validate)


def data_url_length(media_type: str, size: int) -> int:
    """The length of the data URL of a file of ``size`` bytes: base64 is 4 chars per 3 bytes."""
    return len(f"data:{media_type};base64,") + 4 * ((size + 2) // 3)
