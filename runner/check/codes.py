"""A stable code for every kind of problem, as ``runner validate`` shows it (text, JSON and
GitHub annotations) and docs/problems.md lists it with an example and its fix.

Checks written for issue 23 and the schema explanations set ``Problem.code`` themselves; the
older checks' problems are given theirs here from their wording (``MESSAGE_CODES``), so every
problem has one. A test holds every code to an entry of docs/problems.md, and each pattern to
the message it names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path

from runner.errors import Problem
from runner.spec.hints import did_you_mean
from runner.spec.load import load_yaml
from runner.spec.project import CONFIG_FILE, ProjectConfig, display_path

# code -> one line on what the kind of problem is (docs/problems.md has the examples).
CODES: dict[str, str] = {
    # YAML and files
    "yaml-syntax": "the file is not valid YAML",
    "unquoted-template": "a value starting with {{ or {% is not quoted",
    "misaligned-key": "a key is not lined up with the keys of its list item",
    "duplicate-key": "a key appears twice in one mapping",
    "unreadable-file": "a file cannot be read (missing, binary, too large, not UTF-8)",
    "unsafe-yaml": "the YAML uses tags, deep nesting or alias bombs",
    # the spec schema
    "unknown-key": "a key the spec format does not have (with the closest one)",
    "misplaced-key": "a key that belongs one level up, down or beside where it is",
    "missing-key": "a required key is missing",
    "wrong-type": "a value of the wrong type",
    "wrong-form": "a value of the right meaning written in the wrong form",
    "unknown-value": "a value that is not one of those allowed (with the closest one)",
    "out-of-range": "a number outside its range",
    "wrong-size": "a list or text with too few or too many items or characters",
    "wrong-pattern": "a value that does not have the required form",
    "schema-rule": "another rule of the spec format",
    "repeated-name": "two specs have the same name",
    "matrix-field": "the matrix varies something that is not a request field",
    "project-config": "a mistake in runner.yaml",
    # templates
    "template-syntax": "a template's Jinja syntax is wrong",
    "unknown-filter": "a template uses a filter or test that does not exist",
    "template-unsafe": "a template reaches for what templates may not",
    "include-not-found": "an included or imported template is not in templates/",
    "missing-import": "a template imports a name the other template does not define",
    "undefined-variable": "a template uses a variable that nothing gives a value",
    "variable-with-minus": "a template name with '-' in it, which Jinja reads as a subtraction",
    "unused-variable": "a --var or --vars-file variable that no template uses (warning)",
    "render-fails": "a request cannot be rendered with its case's values",
    # cases and data files
    "data-file-not-found": "a data file (or files: pattern) finds no file",
    "data-file-outside": "a data file, pattern or $ref points outside the project",
    "data-file-type": "a data file is not .csv, .jsonl, .json, .yaml or .yml",
    "bad-row": "a row of cases cannot be read",
    "row-missing-variable": "a row of cases has no value for a variable the templates use",
    "repeated-case": "two cases have the same id",
    "csv-header": "a CSV header is empty, repeated or separated by ';' or tabs",
    "no-cases": "the cases are empty",
    # JSON Schemas, $refs, structured output and tools
    "ref-not-found": "a $ref file cannot be found or read",
    "ref-url": "a $ref points at a URL",
    "ref-loop": "a $ref refers back to itself",
    "invalid-json-schema": "a response or parameters schema is not valid JSON Schema",
    "strict-mode": "a strict schema breaks the provider's strict-mode rules",
    "tool-parameters-not-object": "a tool's parameters schema is not an object schema",
    "duplicate-tool": "two tools have the same name",
    "tool-choice": "tool_choice names a tool that is not defined, or there are no tools",
    "json-mode-without-json": "JSON mode without the word JSON in the messages",
    "image-not-in-user-message": "an image part in a message that takes only text",
    "tool-message-without-call": "a tool message that answers no earlier tool call",
    "tool-call-without-answer": "an assistant's tool call that no tool message answers",
    "token-limits": "both max_tokens and max_completion_tokens are set",
    "reasoning-format": "Groq's reasoning_format where Groq refuses it",
    # models (the catalogue of each built-in provider)
    "retired-model": "the provider has retired the model: every request to it fails",
    "deprecated-model": "the model is deprecated: the provider shuts it down soon (warning)",
    "unknown-model": "the provider's catalogue has no such model id (warning)",
    "model-capability": "a request the model cannot serve (images, strict, reasoning, tokens)",
    "model-not-served": "validate --online: the provider's live model list lacks the model",
    # providers and keys
    "provider-label": "a spec-defined endpoint uses a built-in provider's name",
    "provider-url": "a base_url with user info or a backslash before its path",
    # images
    "image-not-found": "a local image cannot be found or read",
    "image-limit": "an image breaks the provider's limits (type, size, pixels)",
    # expect checks
    "expect-check": "a mistake in an expect: check",
    "judge": "a judge: check, or the judge spec it names, is not one runner can ask",
    "chained-run": "cases: {run: ...} names no finished run, or its records lack a variable",
}

# Problems of the older checks, by their wording: (code, pattern searched in the message).
MESSAGE_CODES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (code, re.compile(pattern))
    for code, pattern in (
        ("unquoted-template", r"^(YAML syntax error: )?a template starting with"),
        ("misaligned-key", r"^YAML syntax error: '.*' is indented"),
        ("yaml-syntax", r"^(YAML syntax error|not valid YAML|holds more than one)"),
        ("duplicate-key", r"appears twice in the same mapping"),
        ("unsafe-yaml", r"^this document (expands|is nested|uses the tag|uses a list)"),
        (
            "unreadable-file",
            r"^(base spec not found|a base spec must be|file not found|is a directory|"
            r"cannot read|is a binary|is not "
            r"valid UTF-8|file is too large)",
        ),
        ("repeated-name", r"^spec name '.*' is also used by"),
        ("matrix-field", r"^(the matrix cannot vary|matrix \w+\[)"),
        ("project-config", r"runner\.yaml"),
        ("template-syntax", r"^template syntax error"),
        ("unknown-filter", r"^template uses the (filter|test) '"),
        ("template-unsafe", r"^template (uses the attribute|formats with|tried something)"),
        ("include-not-found", r"^template include not found"),
        ("missing-import", r"defines no macro or variable named"),
        ("undefined-variable", r"^template uses the variable '.*', which has no value"),
        ("render-fails", r"(makes the template at .* fail|^template error)"),
        ("data-file-not-found", r"^(data file not found|no file matches)"),
        (
            "data-file-outside",
            r"(is outside the project folder|may not leave the spec's folder|"
            r"points outside the project)",
        ),
        ("data-file-type", r"is not (a data file this runner reads|a pattern this runner)"),
        ("row-missing-variable", r"^(row|case) \d+ has no value for"),
        ("repeated-case", r"^(row|case|file) \d+ has the same"),
        ("bad-row", r"^(row|case) \d+ (is not|has \d+ value)"),
        (
            "csv-header",
            r"(of the header has no name|the header is one column|appears twice in "
            r"the header)",
        ),
        ("no-cases", r"has no cases"),
        ("data-file-type", r"^(a data file must hold|is not valid JSON)"),
        ("ref-url", r"^\$ref '.*' points at a URL"),
        ("ref-loop", r"refers back to itself"),
        ("ref-not-found", r"^\$ref (file|')"),
        ("invalid-json-schema", r"^not a valid JSON Schema"),
        ("strict-mode", r"strict mode: "),
        ("duplicate-tool", r"^two tools are named"),
        ("tool-choice", r"^tool_choice (is set|names the tool)"),
        ("token-limits", r"^both max_tokens and max_completion_tokens"),
        ("json-mode-without-json", r"^JSON mode needs the word"),
        ("provider-label", r"is a built-in provider"),
        (
            "image-not-found",
            r"(image file not found|the image path|cannot read the image|"
            r".* is not an image)",
        ),
        (
            "image-limit",
            r"(which \w+ does not take|is an animated GIF|pixels\)|bytes; |more image "
            r"problem|the request with its images)",
        ),
        (
            "expect-check",
            r"(check names|does not go with|tool_call expects|has no argument|"
            r"expected value|response schema has no|is not a valid regular expression|^regex )",
        ),
    )
)


# Codes that are warnings: runner.yaml's silence: may list them.
WARNING_CODES = frozenset({"unused-variable", "deprecated-model", "unknown-model"})


def silenced(problems: Iterable[Problem], configs: Iterable[ProjectConfig]) -> list[Problem]:
    """``problems`` without the warnings whose code a project's runner.yaml silences."""
    quiet = {code for config in configs for code in config.silence}
    return [p for p in problems if p.is_error or code_of(p) not in quiet]


def silence_problems(root: Path, config: ProjectConfig) -> Iterator[Problem]:
    """runner.yaml's silence: names only warning codes (a typo would silence nothing)."""
    if not config.silence:
        return
    file = root / CONFIG_FILE
    doc = load_yaml(file, display_path(file))
    listed = doc.data.get("silence") if isinstance(doc.data, dict) else None
    for i, code in enumerate(listed if isinstance(listed, list) else [listed]):
        if code in WARNING_CODES:
            continue
        if code in CODES:
            message = f"'{code}' is an error, and errors cannot be silenced"
            hint = f"warnings that can be: {', '.join(sorted(WARNING_CODES))}"
        else:
            message = f"no warning has the code '{code}'"
            hint = did_you_mean(str(code), sorted(WARNING_CODES)) or (
                f"warnings that can be silenced: {', '.join(sorted(WARNING_CODES))}"
            )
        yield doc.problem(("silence", i), message, hint, code="project-config")


def code_of(problem: Problem) -> str:
    """The problem's code: its own, or the one its wording names; 'schema-rule' otherwise."""
    if problem.code:
        return problem.code
    for code, pattern in MESSAGE_CODES:
        if pattern.search(problem.message):
            return code
    return "schema-rule"


def with_code(problem: Problem) -> Problem:
    """The problem with its code set (see ``code_of``)."""
    return problem if problem.code else replace(problem, code=code_of(problem))
