"""Local images: every case's image files checked against the spec's provider's limits, from
their headers only (``runner/spec/images.py`` reads and sends them)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import jinja2

from runner.check.context import SpecFile
from runner.errors import Problem, RenderError, plural
from runner.spec.cases import combinations, iter_cases
from runner.spec.images import (
    GIF,
    MAX_IMAGE_BYTES,
    ImageError,
    ImageInfo,
    ImageLimits,
    as_written,
    data_url_length,
    gif_frames,
    inspect_part,
    limits_for,
    problem_at,
    resolve_image,
    too_large,
)
from runner.spec.objects import ImagePart, Spec
from runner.spec.project import find_project_root
from runner.spec.render import render_request, render_text, template_environment

MAX_REPORTED = 10  # image problems reported per spec; the rest are counted


def check_images(file: SpecFile, spec: Spec) -> Iterable[Problem]:
    """Missing or unreadable images, and the provider's limits, case by case. Skipped when the
    cases themselves could not be read: their problems are reported already."""
    if "cases" in file.data and spec.cases is None:
        return []
    return image_problems(spec)


def image_problems(spec: Spec) -> list[Problem]:
    """What is wrong with the local images of every case of ``spec``, for its provider.

    Each image is read only as far as its header. The request size is the body as sent,
    computed from the text and the images' byte sizes without encoding them.
    """
    parts = list(_image_parts(spec))
    if not parts:
        return []
    limits = limits_for(spec.provider)
    env = template_environment(find_project_root(spec.path))
    # A matrix adds its fields to the body: ',"key":value' for each, at most.
    widest = max(
        len(json.dumps(dict(c.fields), separators=(",", ":"), ensure_ascii=False)) - 1
        if c.fields
        else 0
        for c in combinations(spec.matrix)
    )
    problems: list[Problem] = []
    more = 0
    for case in iter_cases(spec.cases):
        found = _case_problems(spec, env, parts, case.vars, limits, widest)
        for problem in found:
            if len(problems) < MAX_REPORTED:
                label = f"case '{case.id}': " if case.id else ""
                problems.append(
                    Problem(
                        problem.path,
                        label + problem.message,
                        problem.line,
                        problem.column,
                        problem.hint,
                    )
                )
            else:
                more += 1
    if more:
        first = parts[0][2].path
        problems.append(
            Problem(
                first.path,
                f"... and {plural(more, 'more image problem')}",
                first.line,
                first.column,
            )
        )
    return problems


def _image_parts(spec: Spec) -> Iterator[tuple[int, int, ImagePart]]:
    for m, message in enumerate(spec.messages):
        if isinstance(message.content, tuple):
            for p, part in enumerate(message.content):
                if isinstance(part, ImagePart):
                    yield m, p, part


def _case_problems(
    spec: Spec,
    env: jinja2.Environment,
    parts: list[tuple[int, int, ImagePart]],
    case_vars: Mapping[str, Any],
    limits: ImageLimits,
    widest_combination: int,
) -> list[Problem]:
    variables = {**spec.vars, **case_vars}
    problems: list[Problem] = []
    infos: list[ImageInfo] = []
    for _, _, part in parts:
        try:
            target, relative = resolve_image(part, render_text(env, part.path, variables))
            info = inspect_part(part, target, relative)
        except ImageError as exc:
            problems.append(exc.problem)
            continue
        except RenderError:
            continue  # the path's template fails: reported by the template and case checks
        infos.append(info)
        problems += _image_limit_problems(part, target, relative, info, limits)
    first = parts[0][2]
    provider = limits.provider
    if limits.max_images is not None and len(parts) > limits.max_images:
        problems.append(
            problem_at(
                first,
                f"the request has {len(parts)} images; {provider} takes at most "
                f"{limits.max_images} per request",
                "send fewer images per request, e.g. one case per image",
            )
        )
    if len(infos) == len(parts):
        total = sum(info.size for info in infos)
        if limits.max_total_image_bytes is not None and total > limits.max_total_image_bytes:
            problems.append(
                problem_at(
                    first,
                    f"the request's images add up to {total:,} bytes; {provider} takes at most "
                    f"{limits.max_total_image_bytes:,}",
                    "send fewer or smaller images per request",
                )
            )
        if limits.max_request_bytes is not None:
            size = _request_size(spec, env, variables, infos) + widest_combination
            if size > limits.max_request_bytes:
                problems.append(
                    problem_at(
                        first,
                        f"the request with its base64 images is {size:,} bytes; {provider} "
                        f"takes at most {limits.max_request_bytes:,}",
                        "make the images smaller (fewer pixels, JPEG or WebP) or send fewer "
                        "per request",
                    )
                )
    return problems


def _image_limit_problems(
    part: ImagePart, target: Path, relative: str, info: ImageInfo, limits: ImageLimits
) -> list[Problem]:
    shown = as_written(part, target)
    problems: list[Problem] = []
    provider = limits.provider
    if info.media_type not in limits.types:
        kinds = ", ".join(t.split("/")[1].upper() for t in limits.types)
        problems.append(
            problem_at(
                part, f"{shown} is {info.media_type}, which {provider} does not take: {kinds}"
            )
        )
    if info.media_type == GIF and not limits.animated_gif and gif_frames(target) > 1:
        problems.append(
            problem_at(part, f"{shown} is an animated GIF; {provider} takes only still GIFs")
        )
    pixels = info.width * info.height
    if limits.max_pixels is not None and pixels > limits.max_pixels:
        problems.append(
            problem_at(
                part,
                f"{shown} is {info.width}x{info.height} ({pixels:,} pixels); {provider} "
                f"takes at most {limits.max_pixels:,} pixels per image",
                "scale the image down",
            )
        )
    own_limit = limits.max_image_bytes or MAX_IMAGE_BYTES
    if info.size > MAX_IMAGE_BYTES and own_limit >= MAX_IMAGE_BYTES:
        problems.append(too_large(part, shown, info.size))
    elif limits.max_image_bytes is not None and info.size > limits.max_image_bytes:
        problems.append(
            problem_at(
                part,
                f"{shown} is {info.size:,} bytes; {provider} takes at most "
                f"{limits.max_image_bytes:,} per image",
                "make the image smaller",
            )
        )
    return problems


def _request_size(
    spec: Spec, env: jinja2.Environment, variables: Mapping[str, Any], infos: list[ImageInfo]
) -> int:
    """The bytes of the request body as sent, with empty image URLs plus their encoded length."""
    try:
        body = render_request(spec, variables, images="placeholder").body
    except RenderError:
        return 0  # a text template fails for this case: it is saved as a failed record
    payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    return len(payload) + sum(data_url_length(i.media_type, i.size) for i in infos)
