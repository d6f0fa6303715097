"""DurableTopic manifests read from YAML files the way kubectl reads them, and safely.

go-yaml v2's scalar resolution (`yes`/`on`/`y` are booleans, `010` is octal, `1e3` is a number,
dates stay strings), and limits: a file is at most 5 MiB and 10,000 documents, nesting at most 100
levels, and aliases are allowed only while they do not expand a document by more than 100,000 nodes
(a "billion laughs" document is refused in milliseconds, as kubectl refuses it).
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.error import Mark, MarkedYAMLError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from durabletopic.core import crd

try:  # libyaml's parser, with the composer below in Python: 15x faster than the pure-Python parser.
    from yaml._yaml import CParser as _Parser
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Parser(Reader, Scanner, Parser):  # type: ignore[no-redef]
        def __init__(self, stream: str) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)


MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_DOCUMENTS = 10_000
MAX_DEPTH = 100
MAX_ALIAS_EXPANSION = 100_000
STDIN = "-"

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True, slots=True)
class ReadError:
    """Input that is not YAML this tool reads (or not readable at all)."""

    file: str
    line: int | None
    column: int | None
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}:{self.column or 1}"
        return f"{where}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Manifest:
    """One DurableTopic document, as JSON would carry it to the API server."""

    file: str
    document: int
    line: int
    object: dict[str, Any]
    warnings: tuple[tuple[int, str], ...] = ()

    @property
    def name(self) -> str:
        metadata = self.object.get("metadata")
        name = metadata.get("name") if isinstance(metadata, dict) else None
        return name if isinstance(name, str) else ""

    @property
    def namespace(self) -> str | None:
        metadata = self.object.get("metadata")
        namespace = metadata.get("namespace") if isinstance(metadata, dict) else None
        return namespace if isinstance(namespace, str) else None

    @property
    def key(self) -> tuple[str | None, str]:
        return (self.namespace, self.name)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(slots=True)
class ManifestSet:
    """The DurableTopics read from some files, and what could not be read."""

    manifests: list[Manifest] = field(default_factory=list)
    errors: list[ReadError] = field(default_factory=list)
    skipped: int = 0
    files: int = 0


class _Refused(MarkedYAMLError):
    def __init__(self, problem: str, mark: Mark | None) -> None:
        super().__init__(problem=problem, problem_mark=mark)


_TRUE = frozenset({"y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"})
_FALSE = frozenset({"n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"})
_NULL = frozenset({"", "~", "null", "Null", "NULL"})
_SPECIAL_FLOATS = frozenset(
    {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan", ".NaN", ".NAN"}
)
_GO_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")
_DIGITS = {2: re.compile(r"[01]+\Z"), 8: re.compile(r"[0-7]+\Z"), 10: re.compile(r"[0-9]+\Z")}
_DIGITS[16] = re.compile(r"[0-9a-fA-F]+\Z")
_TAG = "tag:yaml.org,2002:"


def _go_int(text: str) -> int | None:
    """strconv.ParseInt(s, 0, 64) or ParseUint, after go-yaml v2 dropped the underscores."""
    s = text.replace("_", "")
    sign = -1 if s.startswith("-") else 1
    s = s[1:] if s[:1] in ("-", "+") else s
    base, digits = 10, s
    prefix = s[:2].lower()
    if prefix in ("0x", "0o", "0b"):
        base, digits = {"0x": 16, "0o": 8, "0b": 2}[prefix], s[2:]
    elif len(s) > 1 and s.startswith("0"):
        base, digits = 8, s[1:]
    # 64 binary digits hold every int64 and uint64; a longer text is out of range (and Python would
    # refuse to convert one of thousands of digits).
    if len(digits) > 64 or not _DIGITS[base].match(digits):
        return None
    value = sign * int(digits, base)
    return value if _INT64_MIN <= value <= 2**64 - 1 else None


def _resolve_plain(value: str) -> str:
    if value in _NULL:
        return _TAG + "null"
    if value in _TRUE or value in _FALSE:
        return _TAG + "bool"
    if value == "<<":
        return _TAG + "merge"
    if value[:1] in "+-.0123456789":
        if value in _SPECIAL_FLOATS:
            return _TAG + "float"
        if _go_int(value) is not None:
            return _TAG + "int"
        if _go_float(value) is not None:
            return _TAG + "float"
    return _TAG + "str"


def _go_float(text: str) -> float | None:
    """strconv.ParseFloat(s, 64) as go-yaml v2 uses it: a value out of float64's range is no float
    (go-yaml then keeps the text as a string)."""
    plain = text.replace("_", "")
    if not _GO_FLOAT.match(plain):
        return None
    value = float(plain)
    return None if math.isinf(value) else value


class _Loader(Composer, _Parser, SafeConstructor, Resolver):
    """A safe loader that composes in Python (to bound nesting and aliases) on libyaml's parser."""

    def __init__(self, stream: str) -> None:
        _Parser.__init__(self, stream)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        self._depth = 0
        self.duplicates: list[tuple[int, str]] = []

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is ScalarNode and implicit[0]:
            return _resolve_plain(value)
        return str(super().resolve(kind, value, implicit))  # type: ignore[no-untyped-call]

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                event = self.peek_event()
                raise _Refused(
                    f"nested more than {MAX_DEPTH} levels deep", getattr(event, "start_mark", None)
                )
            node: Node | None = super().compose_node(parent, index)
            assert node is not None
            return node
        finally:
            self._depth -= 1

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, ScalarNode) and key_node.tag != _TAG + "merge":
                key = (key_node.tag, key_node.value)
                if key in seen:
                    self.duplicates.append(
                        (key_node.start_mark.line + 1, f"duplicate key {key_node.value!r}: the last one wins")
                    )
                seen.add(key)
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


def _construct_int(loader: _Loader, node: ScalarNode) -> int:
    value = _go_int(node.value)
    if value is None:
        raise ConstructorError(None, None, f"{node.value!r} is not an integer", node.start_mark)
    return value


def _construct_float(loader: _Loader, node: ScalarNode) -> float:
    if node.value in _SPECIAL_FLOATS:
        raise _Refused(f"{node.value} cannot be carried in JSON to the API server", node.start_mark)
    value = _go_float(node.value)
    if value is None:
        raise ConstructorError(None, None, f"{node.value!r} is not a number", node.start_mark)
    return value


def _construct_bool(loader: _Loader, node: ScalarNode) -> bool:
    return node.value in _TRUE


def _refuse_tag(loader: _Loader, node: Node) -> Any:
    raise _Refused(f"the tag {node.tag} is not supported in a Kubernetes manifest", node.start_mark)


_Loader.add_constructor(_TAG + "int", _construct_int)  # type: ignore[type-var]
_Loader.add_constructor(_TAG + "float", _construct_float)  # type: ignore[type-var]
_Loader.add_constructor(_TAG + "bool", _construct_bool)  # type: ignore[type-var]
for _tag in ("binary", "timestamp", "set", "omap", "pairs"):
    _Loader.add_constructor(_TAG + _tag, _refuse_tag)  # type: ignore[type-var]


def _expanded_size(node: Node, memo: dict[int, int], active: set[int]) -> int:
    """Nodes of `node` with every alias expanded, computed without expanding anything."""
    key = id(node)
    if key in memo:
        return memo[key]
    if key in active:
        raise _Refused("an anchor's value contains an alias of itself", node.start_mark)
    active.add(key)
    size = 1
    if isinstance(node, SequenceNode):
        size += sum(_expanded_size(child, memo, active) for child in node.value)
    elif isinstance(node, MappingNode):
        size += sum(_expanded_size(k, memo, active) + _expanded_size(v, memo, active) for k, v in node.value)
    active.discard(key)
    memo[key] = size
    return size


def _json_key(key: Any) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    return str(key)


def _as_json(value: Any) -> Any:
    """The value as the API server decodes kubectl's JSON: integral numbers within int64 are integers."""
    if isinstance(value, dict):
        return {_json_key(k): _as_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_json(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value if _INT64_MIN <= value <= _INT64_MAX else float(value)
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and _INT64_MIN <= value <= _INT64_MAX:
            return int(value)
        return value
    raise TypeError(f"a value of type {type(value).__name__}")


@dataclass(frozen=True, slots=True)
class Document:
    """One YAML document of a file: its index in the stream, the line it starts on, its value."""

    index: int
    line: int
    value: Any
    warnings: tuple[tuple[int, str], ...]


def load_documents(text: str, file: str) -> tuple[list[Document], ReadError | None]:
    """The documents of a YAML stream; on the first problem, the ones before it and the problem."""
    loader = _Loader(text)
    documents: list[Document] = []
    try:
        while loader.check_node():
            if len(documents) >= MAX_DOCUMENTS:
                raise _Refused(f"more than {MAX_DOCUMENTS} documents in one file", None)
            node = loader.get_node()
            assert node is not None
            memo: dict[int, int] = {}
            expanded = _expanded_size(node, memo, set())
            if expanded > len(memo) + MAX_ALIAS_EXPANSION:
                raise _Refused(
                    f"aliases expand this document to {expanded} nodes (more than {MAX_ALIAS_EXPANSION} "
                    "beyond what is written): refused as a YAML bomb",
                    node.start_mark,
                )
            loader.duplicates = []
            value = loader.construct_document(node)
            try:
                value = _as_json(value)
            except TypeError as error:
                raise _Refused(f"{error} cannot be carried in JSON", node.start_mark) from None
            documents.append(
                Document(len(documents), node.start_mark.line + 1, value, tuple(loader.duplicates))
            )
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem = error.problem or error.context or "invalid YAML"
        if error.context and error.problem and not isinstance(error, _Refused):
            problem = f"{error.context}: {error.problem}"
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
        return documents, ReadError(file, line, column, problem)
    except yaml.YAMLError as error:
        return documents, ReadError(file, None, None, str(error).replace("\n", " "))
    except RecursionError:
        return documents, ReadError(file, None, None, "nested too deeply")
    finally:
        loader.dispose()
    return documents, None


def _read_text(path: str) -> str:
    if path == STDIN:
        data = sys.stdin.buffer.read(MAX_FILE_BYTES + 1)
    else:
        with open(path, "rb") as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
    return data.decode("utf-8-sig")


def expand_paths(paths: Iterable[str]) -> Iterator[tuple[str, ReadError | None]]:
    """Files to read: each file given, and every *.yaml and *.yml under each directory given."""
    for path in paths:
        if path == STDIN or os.path.isfile(path):
            yield path, None
        elif os.path.isdir(path):
            found = []
            for root, dirs, files in os.walk(path):
                dirs.sort()
                found += [os.path.join(root, f) for f in sorted(files) if f.endswith((".yaml", ".yml"))]
            yield from ((f, None) for f in found)
        else:
            yield path, ReadError(path, None, None, "no such file or directory")


def is_durable_topic(document: Any) -> bool:
    return isinstance(document, dict) and document.get("kind") == crd.KIND and group_of(document) == crd.GROUP


def group_of(document: Mapping[str, Any]) -> str | None:
    api_version = document.get("apiVersion")
    return api_version.partition("/")[0] if isinstance(api_version, str) else None


@dataclass(slots=True)
class DocumentSet:
    """The documents read from some files, with the file each comes from, and what could not be read."""

    documents: list[tuple[str, Document]] = field(default_factory=list)
    errors: list[ReadError] = field(default_factory=list)
    files: int = 0


def read_documents(paths: Iterable[str]) -> DocumentSet:
    """Every non-empty YAML document in `paths` (files, directories, or - for stdin), in order."""
    read = DocumentSet()
    for path, missing in expand_paths(paths):
        if missing is not None:
            read.errors.append(missing)
            continue
        read.files += 1
        name = "<stdin>" if path == STDIN else path
        try:
            text = _read_text(path)
        except (OSError, ValueError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
            read.errors.append(ReadError(name, None, None, f"cannot read: {reason}"))
            continue
        documents, problem = load_documents(text, name)
        if problem is not None:
            read.errors.append(problem)
        read.documents += [(name, d) for d in documents if d.value is not None]
    return read


def load(paths: Iterable[str]) -> ManifestSet:
    """Every DurableTopic in `paths`; other kinds are counted as skipped."""
    read = read_documents(paths)
    report = ManifestSet(errors=read.errors, files=read.files)
    for file, document in read.documents:
        if not is_durable_topic(document.value):
            report.skipped += 1
            continue
        report.manifests.append(
            Manifest(file, document.index, document.line, document.value, document.warnings)
        )
    return report


def parse_manifests(text: str, file: str = "<string>") -> list[Manifest]:
    """The DurableTopics of a YAML string (for tests and tools); raises ValueError on unreadable input."""
    documents, problem = load_documents(text, file)
    if problem is not None:
        raise ValueError(str(problem))
    return [
        Manifest(file, d.index, d.line, d.value, d.warnings) for d in documents if is_durable_topic(d.value)
    ]
