"""Instances of JSON Schemas: a value that satisfies a schema, made deterministically.

The offline provider answers structured outputs and tool calls with these. Standard library
only; instances are cached per schema text.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from fractions import Fraction
from typing import Any, NamedTuple, TypeGuard
from urllib.parse import unquote

from runner.send.regex_sample import MAX_REPEAT, pattern_strings, regex_search, within_length

_CACHE_LIMIT = 4096
_INSTANCE_CACHE: dict[str, str] = {}


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else []


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


# --------------------------------------------------------------------------------------------
# instances of JSON Schemas


def instance_for(schema: dict, seed: int = 0) -> object:
    """A JSON value that satisfies ``schema`` (best effort when the schema cannot be met);
    ``seed`` chooses among the values it allows (see ``instance_text``)."""
    return json.loads(instance_text(schema, seed))


def instance_text(schema: Any, seed: int = 0) -> str:
    """Compact JSON text of an instance of ``schema``, cached per schema text and seed.

    ``seed`` (the offline provider gives a hash of the request) picks among the values the
    schema allows: enum members, numbers, booleans, strings. The same seed always gives the
    same instance; seed 0 gives the plain one (the first enum member, "example name", ...).

    The key keeps the schema's own key order (no sort_keys): two schemas differing only in
    order may yield differently ordered output, so sharing one entry would make the output
    depend on which request came first.
    """
    key = f"{seed}:{compact(schema)}"
    text = _INSTANCE_CACHE.get(key)
    if text is None:
        try:
            value = _Generator(schema).make(schema, _Ctx(seed=seed))
        except (RecursionError, ValueError, TypeError, OverflowError, ZeroDivisionError):
            value = {}
        text = compact(value)
        if len(_INSTANCE_CACHE) >= _CACHE_LIMIT:
            _INSTANCE_CACHE.clear()
        _INSTANCE_CACHE[key] = text
    return text


class _Ctx(NamedTuple):
    """Where the generator is: the property name, which variant, the $refs on the path."""

    name: str = ""
    variant: int = 0
    nest: int = 0
    refs: tuple[str, ...] = ()
    deep: bool = False  # inside a recursion: prefer values that end it
    seed: int = 0  # from the request: which of the allowed values to choose

    def pick(self, spread: int) -> int:
        """The variant to use for a choice among about ``spread`` values: ``variant`` moved
        by the seed, the same for the same property at the same depth."""
        if not self.seed:
            return self.variant
        return self.variant + self.mix() % max(spread, 1)

    def mix(self) -> int:
        """A number from the seed and where the generator is (property name and depth)."""
        place = f"{self.seed}:{self.nest}:{self.name}".encode()
        return int.from_bytes(hashlib.blake2b(place, digest_size=6).digest(), "big")

    def child(self, name: str | None = None, variant: int = 0) -> _Ctx:
        return self._replace(
            name=self.name if name is None else name, variant=variant, nest=self.nest + 1
        )


_NUMBER_SPREAD = 10  # a seeded number is one of the ten the schema allows from its default
_PATTERN_SPREAD = 1000
_FORMAT_SPREAD = 28
# Seeded free text reads "example summary (harbor)": a word that changes with the request.
_WORDS = (
    "amber", "birch", "cobalt", "delta", "ember", "fjord", "granite", "harbor", "indigo",
    "juniper", "kestrel", "lagoon", "meadow", "nectar", "orchid", "pebble", "quartz", "river",
    "saffron", "tundra", "umber", "violet", "willow", "yarrow", "zephyr", "aspen", "cedar",
    "dune", "falcon", "glacier", "heron", "iris",
)  # fmt: skip

_HARD_STOP = 64
_STEP_BUDGET = 200_000
_RECURSION_LEVELS = 2  # a $ref seen this often on the path makes the generator wind down
_MIN_KEYS = ("minimum", "minLength", "minItems", "minProperties", "minContains")
_MAX_KEYS = ("maximum", "maxLength", "maxItems", "maxProperties", "maxContains")
_OBJECT_KEYS = (
    "properties",
    "required",
    "additionalProperties",
    "patternProperties",
    "minProperties",
    "maxProperties",
    "propertyNames",
    "dependentRequired",
)
_ARRAY_KEYS = ("items", "prefixItems", "minItems", "maxItems", "uniqueItems", "contains")
_STRING_KEYS = ("minLength", "maxLength", "pattern", "format")
_NUMBER_KEYS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")


class _Generator:
    """Builds an instance of one root schema; local $refs resolve against that root."""

    def __init__(self, root: Any) -> None:
        self.root = root
        self.steps = 0  # shared with the checker: pathological schemas must still end quickly
        self.checker = _Checker(self)

    def spent(self) -> bool:
        """Count one step; True once the step budget is used up."""
        self.steps += 1
        return self.steps > _STEP_BUDGET

    def make(self, schema: Any, ctx: _Ctx) -> Any:
        """An instance of ``schema``."""
        if schema is False or ctx.nest > _HARD_STOP or len(ctx.refs) > _HARD_STOP:
            return None
        if self.spent():
            return None
        if not isinstance(schema, dict) or not schema:
            return None if ctx.deep else _words(ctx)
        schema, ctx = self.flatten(schema, ctx)
        if "const" in schema:
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return self._enum(schema, ctx)
        if isinstance(schema.get("anyOf"), list) or isinstance(schema.get("oneOf"), list):
            return self._branches(schema, ctx)
        value = self._typed(schema, ctx)
        if isinstance(schema.get("not"), (dict, bool)):
            value = self._avoid(schema, ctx, value)
        return value

    # -- $ref and allOf

    def flatten(self, schema: dict, ctx: _Ctx) -> tuple[dict, _Ctx]:
        """``schema`` with its $ref and allOf merged in; ``ctx`` notes the $refs followed."""
        for _ in range(_HARD_STOP):
            ref = schema.get("$ref")
            if isinstance(ref, str):
                rest = {k: v for k, v in schema.items() if k != "$ref"}
                deep = ctx.deep or ctx.refs.count(ref) >= _RECURSION_LEVELS - 1
                ctx = ctx._replace(refs=(*ctx.refs, ref), deep=deep)
                schema = _merge(as_dict(self.lookup(ref)), rest)
            elif isinstance(schema.get("allOf"), list):
                merged = {k: v for k, v in schema.items() if k != "allOf"}
                for raw in schema["allOf"]:
                    part, ctx = self.flatten(as_dict(raw), ctx)
                    merged = _merge(merged, part)
                schema = merged
            else:
                break
        return schema, ctx

    def lookup(self, ref: str) -> Any:
        """The schema a local ``#...`` reference points at ({} when it is not found)."""
        if not ref.startswith("#"):
            return {}
        node = self.root
        for raw in ref[1:].split("/")[1:]:
            token = _unquote(raw).replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and token in node:
                node = node[token]
            elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
                node = node[int(token)]
            else:
                return {}
        return node

    # -- choices among values or subschemas

    def _enum(self, schema: dict, ctx: _Ctx) -> Any:
        options = schema["enum"]
        rest = {k: v for k, v in schema.items() if k != "enum"}
        for i in range(len(options)):
            option = options[(ctx.pick(len(options)) + i) % len(options)]
            if self.checker.ok(option, rest):
                return option
        return options[ctx.pick(len(options)) % len(options)]

    def _branches(self, schema: dict, ctx: _Ctx) -> Any:
        key = "anyOf" if isinstance(schema.get("anyOf"), list) else "oneOf"
        base = {k: v for k, v in schema.items() if k != key}
        branches = list(schema[key])
        if ctx.deep:
            branches.sort(key=_ending_rank)
        first: Any = None
        for i, branch in enumerate(branches):
            value = self.make({**base, "allOf": [branch]}, ctx)
            if self.checker.ok(value, schema):
                return value
            if i == 0:
                first = value
        return first

    def _avoid(self, schema: dict, ctx: _Ctx, value: Any) -> Any:
        rest = {k: v for k, v in schema.items() if k != "not"}
        for variant in range(1, 8):
            if not self.checker.ok(value, schema["not"]):
                return value
            value = self._typed(rest, ctx._replace(variant=ctx.variant + variant))
        return value

    # -- one type

    def _typed(self, schema: dict, ctx: _Ctx) -> Any:
        kind = _pick_type(schema, ctx.deep)
        if kind == "object":
            return self._object(schema, ctx)
        if kind == "array":
            return self._array(schema, ctx)
        if kind == "string":
            return self._string(schema, ctx)
        if kind in ("integer", "number"):
            return _number(schema, ctx.pick(_NUMBER_SPREAD), kind == "integer", self.checker)
        if kind == "boolean":
            return ctx.pick(2) % 2 == 0
        if kind == "null":
            return None
        return None if ctx.deep else _words(ctx)

    def _object(self, schema: dict, ctx: _Ctx) -> dict[str, Any]:
        properties = as_dict(schema.get("properties"))
        required = [r for r in as_list(schema.get("required")) if isinstance(r, str)]
        names = [n for n in properties if n in required] if ctx.deep else list(properties)
        names += [r for r in required if r not in names]
        names = self._with_dependencies(schema, names)
        limit = schema.get("maxProperties")
        if isinstance(limit, int) and len(names) > limit:
            names = sorted(names, key=lambda n: n not in required)[: max(limit, len(required))]
        out: dict[str, Any] = {}
        for name in names:
            sub = self._property_schema(schema, properties, name)
            if sub is not False:
                out[name] = self.make(sub, ctx.child(name))
        self._fill_min_properties(schema, out, ctx)
        return out

    @staticmethod
    def _with_dependencies(schema: dict, names: list[str]) -> list[str]:
        depends = as_dict(schema.get("dependentRequired"))
        for name in names:  # appending while iterating also adds dependencies of dependencies
            names.extend(d for d in as_list(depends.get(name)) if d not in names)
        return names

    @staticmethod
    def _property_schema(schema: dict, properties: dict, name: str) -> Any:
        if name in properties:
            return properties[name]
        for pattern, sub in as_dict(schema.get("patternProperties")).items():
            if regex_search(pattern, name):
                return sub
        extra = schema.get("additionalProperties", True)
        return extra if isinstance(extra, (dict, bool)) else True

    def _fill_min_properties(self, schema: dict, out: dict[str, Any], ctx: _Ctx) -> None:
        least = schema.get("minProperties")
        extra = schema.get("additionalProperties", True)
        if not isinstance(least, int) or extra is False:
            return
        for i in range(1, least + 1):
            if len(out) >= least:
                break
            name = f"{ctx.name or 'extra'}_{i}"
            if name not in out:
                out[name] = self.make(extra, ctx.child(name))

    def _array(self, schema: dict, ctx: _Ctx) -> list[Any]:
        prefix, items = _array_parts(schema)
        count = _array_count(schema, len(prefix), items is False, ctx.deep)
        unique = schema.get("uniqueItems") is True
        out: list[Any] = []
        seen: set[str] = set()
        for i in range(count):
            sub = prefix[i] if i < len(prefix) else items
            value = self.make(sub, ctx.child(variant=i))
            for attempt in range(1, 8 if unique else 1):
                if canonical(value) not in seen:
                    break
                value = self.make(sub, ctx.child(variant=i + attempt * count))
            seen.add(canonical(value))
            out.append(value)
        contains = schema.get("contains")
        if isinstance(contains, dict) and not any(self.checker.ok(v, contains) for v in out):
            wanted = self.make({"allOf": [as_dict(items), contains]}, ctx.child())
            out = [*out[:-1], wanted] if out and len(out) >= _max_items(schema) else [*out, wanted]
        return out

    def _string(self, schema: dict, ctx: _Ctx) -> str:
        low = int_or(schema.get("minLength"), 0)
        high = int_or(schema.get("maxLength"), None)
        formatted = _format_value(schema.get("format"), ctx)
        pattern = schema.get("pattern")
        if isinstance(pattern, str):
            for text in pattern_strings(pattern, ctx.pick(_PATTERN_SPREAD), low, high):
                if formatted is None or text == formatted:
                    return text
        if formatted is not None:
            return formatted if within_length(formatted, low, high) else _fit(formatted, low, high)
        return _fit(_words(ctx), low, high)


# --------------------------------------------------------------------------------------------
# schema helpers


def as_dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _unquote(token: str) -> str:
    return unquote(token) if "%" in token else token


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def int_or(value: Any, default: Any) -> Any:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _types(schema: dict) -> list[str]:
    kind = schema.get("type")
    if isinstance(kind, str):
        return [kind]
    if isinstance(kind, list):
        return [k for k in kind if isinstance(k, str)]
    return []


def _pick_type(schema: dict, deep: bool) -> str:
    """The type to generate: declared (preferring non-null unless deep) or implied by keys."""
    types = _types(schema)
    if types:
        if deep and "null" in types:
            return "null"
        return next((t for t in types if t != "null"), types[0])
    for kind, keys in (
        ("object", _OBJECT_KEYS),
        ("array", _ARRAY_KEYS),
        ("string", _STRING_KEYS),
        ("number", _NUMBER_KEYS),
    ):
        if any(k in schema for k in keys):
            return kind
    return "any"


def _ending_rank(branch: Any) -> int:
    """Sort key that puts branches ending a recursion first: null, then ref-free, then refs."""
    if isinstance(branch, dict) and _types(branch) == ["null"]:
        return 0
    return 2 if '"$ref"' in compact(branch) else 1


def _merge(a: dict, b: dict) -> dict:
    """Both schemas' constraints in one (as allOf would), tightest bound winning."""
    out = dict(a)
    for key, value in b.items():
        if key not in out:
            out[key] = value
        else:
            out[key] = _merge_key(key, out[key], value)
    return out


def _merge_key(key: str, mine: Any, theirs: Any) -> Any:
    if key == "properties" and isinstance(mine, dict) and isinstance(theirs, dict):
        merged = dict(mine)
        for name, sub in theirs.items():
            merged[name] = {"allOf": [merged[name], sub]} if name in merged else sub
        return merged
    if key == "required" and isinstance(mine, list) and isinstance(theirs, list):
        return mine + [r for r in theirs if r not in mine]
    if key in _MIN_KEYS and _is_number(mine) and _is_number(theirs):
        return max(mine, theirs)
    if key in _MAX_KEYS and _is_number(mine) and _is_number(theirs):
        return min(mine, theirs)
    if key == "type":
        return _merge_types(mine, theirs)
    if key == "enum" and isinstance(mine, list) and isinstance(theirs, list):
        both = [v for v in mine if v in theirs]
        return both or mine
    if key in ("anyOf", "oneOf") and isinstance(mine, list) and isinstance(theirs, list):
        pairs = [{"allOf": [x, y]} for x in mine for y in theirs]
        return pairs if len(pairs) <= 64 else mine
    if key in ("additionalProperties", "items", "propertyNames", "contains"):
        if mine is False or theirs is False:
            return False
        return {"allOf": [mine, theirs]}
    if key == "not":
        return {"anyOf": [mine, theirs]}
    return mine


def _merge_types(mine: Any, theirs: Any) -> Any:
    a = [mine] if isinstance(mine, str) else as_list(mine)
    b = [theirs] if isinstance(theirs, str) else as_list(theirs)
    both = [t for t in a if t in b or (t == "integer" and "number" in b)]
    both += [t for t in b if t == "integer" and "number" in a and t not in both]
    return both or mine


def _array_parts(schema: dict) -> tuple[list, Any]:
    """The positional item schemas and the schema of the remaining items."""
    items = schema.get("items", True)
    if isinstance(items, list):  # draft 2019 and earlier: items as a list, then additionalItems
        return items, schema.get("additionalItems", True)
    return as_list(schema.get("prefixItems")), items


def _max_items(schema: dict) -> float:
    high = int_or(schema.get("maxItems"), None)
    return math.inf if high is None else high


def _array_count(schema: dict, prefix: int, closed: bool, deep: bool) -> int:
    low = max(int_or(schema.get("minItems"), 0), 0)
    count = low if deep else max(low, prefix, 1)
    if closed:
        count = min(count, prefix) if low <= prefix else count
    return int(min(count, _max_items(schema), MAX_REPEAT))


# --------------------------------------------------------------------------------------------
# strings


_FORMATS = {
    "date": lambda v, slug: f"2024-01-{1 + v % 28:02d}",
    "date-time": lambda v, slug: f"2024-01-{1 + v % 28:02d}T12:00:00Z",
    "time": lambda v, slug: f"12:{v % 60:02d}:00Z",
    "email": lambda v, slug: f"{slug}{v or ''}@example.com",
    "idn-email": lambda v, slug: f"{slug}{v or ''}@example.com",
    "uri": lambda v, slug: f"https://example.com/{slug}{v or ''}",
    "url": lambda v, slug: f"https://example.com/{slug}{v or ''}",
    "iri": lambda v, slug: f"https://example.com/{slug}{v or ''}",
    "uri-reference": lambda v, slug: f"/{slug}{v or ''}",
    "iri-reference": lambda v, slug: f"/{slug}{v or ''}",
    "uri-template": lambda v, slug: f"https://example.com/{slug}{v or ''}/{{id}}",
    "uuid": lambda v, slug: _uuid(f"{slug}:{v}"),
    "ipv4": lambda v, slug: f"192.0.2.{1 + v % 254}",
    "ipv6": lambda v, slug: f"2001:db8::{v + 1:x}",
    "hostname": lambda v, slug: f"{slug}{v or ''}.example.com",
    "idn-hostname": lambda v, slug: f"{slug}{v or ''}.example.com",
    "duration": lambda v, slug: f"P{v + 1}D",
    "json-pointer": lambda v, slug: f"/{slug}{v or ''}",
    "relative-json-pointer": lambda v, slug: f"{v}",
    "regex": lambda v, slug: f"^{slug}{v or ''}$",
}


def _words(ctx: _Ctx) -> str:
    """A readable string for a property, e.g. 'example first name' for first_name."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", ctx.name)
    words = " ".join(re.split(r"[\s_\-.]+", spaced.lower())).strip()
    text = f"example {words}" if words else "example"
    if ctx.seed:
        text = f"{text} ({_WORDS[ctx.mix() % len(_WORDS)]})"
    return f"{text} {ctx.variant + 1}" if ctx.variant else text


def _slug(ctx: _Ctx) -> str:
    slug = re.sub(r"[^a-z0-9]+", ".", ctx.name.lower()).strip(".")
    return slug or "user"


def _format_value(name: Any, ctx: _Ctx) -> str | None:
    make = _FORMATS.get(name) if isinstance(name, str) else None
    return make(ctx.pick(_FORMAT_SPREAD), _slug(ctx)) if make else None


def _uuid(seed: str) -> str:
    h = hashlib.sha256(seed.encode("utf-8")).hexdigest()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-8{h[17:20]}-{h[20:32]}"


def _fit(text: str, low: int, high: int | None) -> str:
    if len(text) < low:
        text = text.ljust(min(low, MAX_REPEAT * 10), "x")
    if high is not None and len(text) > high:
        text = text[: max(high, 0)]
        if len(text.rstrip()) >= low:
            text = text.rstrip()
    return text


# --------------------------------------------------------------------------------------------
# numbers


def _fraction(value: Any) -> Fraction:
    return Fraction(repr(value)) if isinstance(value, float) else Fraction(value)


def _bounds(schema: dict) -> tuple[Fraction | None, bool, Fraction | None, bool]:
    """(low, low is exclusive, high, high is exclusive), reading both draft styles."""
    found: list[Any] = []
    for plain, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        bound = schema.get(plain) if _is_number(schema.get(plain)) else None
        flag = schema.get(exclusive)
        is_exclusive = flag is True and bound is not None  # draft 4
        if _is_number(flag) and math.isfinite(flag):
            tighter = bound is None or (flag >= bound if plain == "minimum" else flag <= bound)
            if tighter:
                bound, is_exclusive = flag, True
        ok = bound is not None and math.isfinite(bound)
        found += [_fraction(bound) if ok else None, is_exclusive]
    return found[0], found[1], found[2], found[3]


def _number(schema: dict, variant: int, integer: bool, checker: _Checker) -> int | float:
    """A number within the bounds (exclusive ones too) and a multiple of multipleOf."""
    low, low_ex, high, high_ex = _bounds(schema)
    step_raw = schema.get("multipleOf")
    step = _fraction(step_raw) if _is_number(step_raw) and step_raw > 0 else None
    if integer:
        step = Fraction(step.numerator) if step is not None else Fraction(1)
    default = Fraction(1) if integer or step is not None else Fraction(3, 2)
    if step is None:
        return _as_json_number(_continuous(low, low_ex, high, high_ex, default, variant), integer)
    k_low = None if low is None else _first_multiple(low, step, low_ex)
    k_high = None if high is None else -_first_multiple(-high, step, high_ex)
    k = _clamp(math.ceil(default / step) + variant, k_low, k_high, variant)
    candidates = [k + d for d in (0, 1, -1, 2, -2, 3, -3, 4, -4, 5, -5)]
    for cand in candidates:
        if (k_low is None or cand >= k_low) and (k_high is None or cand <= k_high):
            value = _as_json_number(cand * step, integer)
            if checker.ok(value, schema):
                return value
    return _as_json_number(k * step, integer)


def _first_multiple(low: Fraction, step: Fraction, exclusive: bool) -> int:
    k = math.ceil(low / step)
    return k + 1 if exclusive and k * step == low else k


def _clamp(k: int, k_low: int | None, k_high: int | None, variant: int) -> int:
    if k_low is not None and k < k_low:
        k = k_low + variant
    if k_high is not None and k > k_high:
        k = k_high - variant
    if k_low is not None and k < k_low:
        k = k_low
    return k


def _continuous(
    low: Fraction | None,
    low_ex: bool,
    high: Fraction | None,
    high_ex: bool,
    default: Fraction,
    variant: int,
) -> Fraction:
    value = default + variant
    above = low is None or value > low or (value == low and not low_ex)
    below = high is None or value < high or (value == high and not high_ex)
    if above and below:
        return value
    if low is not None and high is not None:
        return low + (high - low) / (variant + 2)
    if low is not None:
        return low + (1 if low_ex else 0) + variant
    assert high is not None
    return high - (1 if high_ex else 0) - variant


def _as_json_number(value: Fraction, integer: bool) -> int | float:
    if integer:
        return math.ceil(value)
    return int(value) if value.denominator == 1 else float(value)


# --------------------------------------------------------------------------------------------
# a small validator, to choose among branches and check candidates (formats are not checked)


class _Checker:
    """Does a value satisfy a schema? The keywords the generator knows, formats excepted."""

    def __init__(self, gen: _Generator) -> None:
        self.gen = gen

    def ok(self, value: Any, schema: Any, depth: int = 0) -> bool:
        if schema is True or schema is None or depth > _HARD_STOP or self.gen.spent():
            return True
        if schema is False or not isinstance(schema, dict):
            return schema is not False
        ref = schema.get("$ref")
        if isinstance(ref, str) and not self.ok(value, self.gen.lookup(ref), depth + 1):
            return False
        return (
            _type_ok(value, _types(schema))
            and ("const" not in schema or _same(value, schema["const"]))
            and ("enum" not in schema or any(_same(value, e) for e in as_list(schema["enum"])))
            and self._combinators_ok(value, schema, depth)
            and self._kind_ok(value, schema, depth)
        )

    def _kind_ok(self, value: Any, schema: dict, depth: int) -> bool:
        if isinstance(value, str):
            return _string_ok(value, schema)
        if _is_number(value):
            return _number_ok(value, schema)
        if isinstance(value, dict):
            return self._object_ok(value, schema, depth)
        if isinstance(value, list):
            return self._array_ok(value, schema, depth)
        return True

    def _combinators_ok(self, value: Any, schema: dict, depth: int) -> bool:
        d = depth + 1
        if not all(self.ok(value, s, d) for s in as_list(schema.get("allOf"))):
            return False
        if "anyOf" in schema and not any(self.ok(value, s, d) for s in as_list(schema["anyOf"])):
            return False
        if "oneOf" in schema and sum(self.ok(value, s, d) for s in as_list(schema["oneOf"])) != 1:
            return False
        if "not" in schema and self.ok(value, schema["not"], d):
            return False
        if "if" in schema:
            branch = "then" if self.ok(value, schema["if"], d) else "else"
            return self.ok(value, schema.get(branch, True), d)
        return True

    def _object_ok(self, value: dict, schema: dict, depth: int) -> bool:
        d = depth + 1
        properties = as_dict(schema.get("properties"))
        patterns = as_dict(schema.get("patternProperties"))
        if any(r not in value for r in as_list(schema.get("required"))):
            return False
        if not _count_ok(len(value), schema, "minProperties", "maxProperties"):
            return False
        for key, item in value.items():
            if "propertyNames" in schema and not self.ok(key, schema["propertyNames"], d):
                return False
            matched = [s for p, s in patterns.items() if regex_search(p, key)]
            if key in properties:
                matched.append(properties[key])
            elif not matched:
                matched.append(schema.get("additionalProperties", True))
            if not all(self.ok(item, s, d) for s in matched):
                return False
        depends = as_dict(schema.get("dependentRequired"))
        return all(d2 in value for k in value for d2 in as_list(depends.get(k)))

    def _array_ok(self, value: list, schema: dict, depth: int) -> bool:
        d = depth + 1
        prefix, items = _array_parts(schema)
        if not _count_ok(len(value), schema, "minItems", "maxItems"):
            return False
        for i, item in enumerate(value):
            if not self.ok(item, prefix[i] if i < len(prefix) else items, d):
                return False
        if schema.get("uniqueItems") is True:
            keys = [canonical(_normal(v)) for v in value]
            if len(set(keys)) != len(keys):
                return False
        if "contains" in schema:
            hits = sum(self.ok(v, schema["contains"], d) for v in value)
            least = int_or(schema.get("minContains"), 1)
            return hits >= least and _count_ok(hits, schema, "minContains", "maxContains")
        return True


def _count_ok(count: int, schema: dict, low_key: str, high_key: str) -> bool:
    low, high = schema.get(low_key), schema.get(high_key)
    return not (_is_number(low) and count < low) and not (_is_number(high) and count > high)


def _type_ok(value: Any, types: list[str]) -> bool:
    return not types or any(_is_type(value, t) for t in types)


def _is_type(value: Any, kind: str) -> bool:
    if kind == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    checks = {
        "number": _is_number,
        "string": lambda v: isinstance(v, str),
        "boolean": lambda v: isinstance(v, bool),
        "null": lambda v: v is None,
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
    }
    check = checks.get(kind)
    return check(value) if check else True


def _string_ok(value: str, schema: dict) -> bool:
    low, high = schema.get("minLength"), schema.get("maxLength")
    if (_is_number(low) and len(value) < low) or (_is_number(high) and len(value) > high):
        return False
    pattern = schema.get("pattern")
    return not isinstance(pattern, str) or regex_search(pattern, value)


def _number_ok(value: float, schema: dict) -> bool:
    low, low_ex, high, high_ex = _bounds(schema)
    if low is not None and (value < low or (low_ex and value == low)):
        return False
    if high is not None and (value > high or (high_ex and value == high)):
        return False
    step = schema.get("multipleOf")
    if not _is_number(step) or step <= 0:
        return True
    if isinstance(step, float):  # the same float arithmetic as the jsonschema library
        quotient = value / step
        return math.isfinite(quotient) and int(quotient) == quotient
    return value % step == 0


def _normal(value: Any) -> Any:
    """A form in which JSON-equal values are equal (1 == 1.0, but True != 1)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_normal(v) for v in value]
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    return value


def _same(a: Any, b: Any) -> bool:
    return canonical(_normal(a)) == canonical(_normal(b))
