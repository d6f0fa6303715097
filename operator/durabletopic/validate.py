"""Offline validation of DurableTopic manifests: what the API server and the operator would say.

Pure: no I/O besides reading the files it is given. Each DurableTopic is checked the way the API
server checks it (the CRD's structural schema, walked from `crd.build()`, with the server's null
pruning and defaulting first), then with the rules the CRD's CEL carries (`rules.check_spec`,
`rules.check_transition`), then with the platform's floors (`rules.check_policy`, which the
admission policy and the operator enforce). Each finding says who refuses it (`Stage`).

YAML is read the way kubectl reads it (go-yaml v2's scalar resolution: `yes`/`on`/`y` are
booleans, `010` is octal, `1e3` is a number, dates stay strings), and safely: a file is at most
5 MiB and 10,000 documents, nesting at most 100 levels, and aliases are allowed only while they
do not expand a document by more than 100,000 nodes (a "billion laughs" document is refused in
milliseconds, as kubectl refuses it).
"""

from __future__ import annotations

import copy
import io
import json
import math
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from functools import cache
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.error import Mark, MarkedYAMLError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from durabletopic import crd, rules
from durabletopic.model import Policy

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
UNKNOWN_FIELD = "unknown-field"

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


class Stage(StrEnum):
    """Who refuses an object with this finding."""

    API_SERVER = "api-server"  # the CRD's schema and CEL rules: kubectl apply fails
    ADMISSION_POLICY = "admission-policy"  # the platform's floors: the admission policy, and the operator
    OPERATOR = "operator"  # admitted, then refused at reconcile time (Stalled)


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem of one object: where it is, which field, which rule, and what to do."""

    file: str
    document: int
    line: int
    name: str
    field: str
    rule: str
    message: str
    stage: Stage
    severity: Severity = Severity.ERROR

    def as_dict(self) -> dict[str, Any]:
        return {k: str(v) if isinstance(v, StrEnum) else v for k, v in asdict(self).items()}


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

    def admitted_spec(self) -> dict[str, Any] | None:
        """The spec as the API server stores it (nulls pruned, defaults set), if it is an object."""
        prepared = prepare(self.object)
        spec = prepared.get("spec")
        return spec if isinstance(spec, dict) else None


@dataclass(slots=True)
class Report:
    manifests: list[Manifest] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    errors: list[ReadError] = field(default_factory=list)
    skipped: int = 0
    files: int = 0

    @property
    def valid(self) -> bool:
        return not self.errors and not any(f.severity is Severity.ERROR for f in self.findings)

    def findings_of(self, manifest: Manifest) -> list[Finding]:
        return [f for f in self.findings if (f.file, f.document) == (manifest.file, manifest.document)]

    def exit_code(self) -> int:
        if self.errors:
            return 2
        return 0 if self.valid else 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "files": self.files,
            "objects": len(self.manifests),
            "skipped": self.skipped,
            "findings": [f.as_dict() for f in self.findings],
            "errors": [e.as_dict() for e in self.errors],
        }


# ------------------------------------------------------------------------------------ reading YAML


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
    if not _DIGITS[base].match(digits):
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
        if _GO_FLOAT.match(value.replace("_", "")):
            return _TAG + "float"
    return _TAG + "str"


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
    try:
        return float(node.value.replace("_", ""))
    except ValueError:
        raise ConstructorError(None, None, f"{node.value!r} is not a number", node.start_mark) from None


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
class _Document:
    index: int
    line: int
    value: Any
    warnings: tuple[tuple[int, str], ...]


def load_documents(text: str, file: str) -> tuple[list[_Document], ReadError | None]:
    """The documents of a YAML stream; on the first problem, the ones before it and the problem."""
    loader = _Loader(text)
    documents: list[_Document] = []
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
                _Document(len(documents), node.start_mark.line + 1, value, tuple(loader.duplicates))
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
    return (
        isinstance(document, dict) and document.get("kind") == crd.KIND and _group_of(document) == crd.GROUP
    )


def _group_of(document: Mapping[str, Any]) -> str | None:
    api_version = document.get("apiVersion")
    return api_version.partition("/")[0] if isinstance(api_version, str) else None


def load(paths: Iterable[str], report: Report | None = None) -> Report:
    """Every DurableTopic in `paths`; other kinds are counted as skipped."""
    report = report if report is not None else Report()
    for path, missing in expand_paths(paths):
        if missing is not None:
            report.errors.append(missing)
            continue
        report.files += 1
        name = "<stdin>" if path == STDIN else path
        try:
            text = _read_text(path)
        except (OSError, ValueError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
            report.errors.append(ReadError(name, None, None, f"cannot read: {reason}"))
            continue
        documents, problem = load_documents(text, name)
        if problem is not None:
            report.errors.append(problem)
        for document in documents:
            if document.value is None:
                continue
            if not is_durable_topic(document.value):
                report.skipped += 1
                continue
            report.manifests.append(
                Manifest(name, document.index, document.line, document.value, document.warnings)
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


# ------------------------------------------------------------------------ the API server's schema


@cache
def _root_schema() -> dict[str, Any]:
    version = crd.build()["spec"]["versions"][0]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def prepare(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The object after the API server's defaulting: non-nullable nulls pruned, defaults set."""
    prepared = _prepare(dict(obj), _root_schema())
    assert isinstance(prepared, dict)
    return prepared


def _sub_schema(schema: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    properties = schema.get("properties") or {}
    if key in properties:
        sub: Mapping[str, Any] = properties[key]
        return sub
    additional = schema.get("additionalProperties")
    return additional if isinstance(additional, Mapping) else None


def _prepare(value: Any, schema: Mapping[str, Any]) -> Any:
    if isinstance(value, dict) and schema.get("type") == "object":
        out: dict[str, Any] = {}
        for key, item in value.items():
            sub = _sub_schema(schema, key)
            if sub is None:
                out[key] = item
            elif item is None and not sub.get("nullable"):
                continue
            else:
                out[key] = _prepare(item, sub)
        for key, sub in (schema.get("properties") or {}).items():
            if key not in out and "default" in sub:
                out[key] = copy.deepcopy(sub["default"])
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        return [_prepare(item, schema["items"]) for item in value]
    return value


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _has_type(value: Any, expected: str) -> bool:
    if isinstance(value, bool) and expected != "boolean":
        return False
    return isinstance(value, _JSON_TYPES.get(expected, (object,)))


@cache
def _go_pattern(pattern: str) -> re.Pattern[str]:
    # RE2's `$` (no multi-line flag) matches only at the end of the text; Python's also before a
    # final newline: "orders\n" matches ^...$ in Python and is refused by the API server.
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern)


@dataclass(frozen=True, slots=True)
class _Problem:
    field: str
    rule: str
    message: str
    severity: Severity = Severity.ERROR


def _child(path: str, key: str, schema: Mapping[str, Any]) -> str:
    if key in (schema.get("properties") or {}):
        return f"{path}.{key}" if path else key
    return f"{path}[{key}]"


def check_schema(value: Any, schema: Mapping[str, Any], path: str) -> list[_Problem]:
    """The structural schema's checks, as the API server makes them (after `prepare`)."""
    expected = schema.get("type")
    if expected and not _has_type(value, expected):
        return [_Problem(path, "schema-type", f"{path} must be of type {expected}, got {_type_name(value)}")]
    problems: list[_Problem] = []
    if isinstance(value, dict):
        for required in schema.get("required") or []:
            if required not in value:
                field = f"{path}.{required}" if path else required
                problems.append(_Problem(field, "schema-required", f"{field} is required"))
        properties = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        for key, item in value.items():
            sub = _sub_schema(schema, key)
            child = _child(path, key, schema)
            if sub is not None:
                problems += check_schema(item, sub, child)
            elif properties and additional is None and not schema.get("x-kubernetes-preserve-unknown-fields"):
                child = f"{path}.{key}" if path else key
                problems.append(
                    _Problem(
                        child,
                        UNKNOWN_FIELD,
                        f"unknown field {child}: the API server drops it (kubectl --validate=strict refuses it)",
                        Severity.WARNING,
                    )
                )
        if "maxProperties" in schema and len(value) > schema["maxProperties"]:
            problems.append(
                _Problem(
                    path,
                    "schema-max-properties",
                    f"{path} must have at most {schema['maxProperties']} entries, got {len(value)}",
                )
            )
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for index, item in enumerate(value):
            problems += check_schema(item, schema["items"], f"{path}[{index}]")
    elif isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            problems.append(
                _Problem(
                    path, "schema-min-length", f"{path} must be at least {schema['minLength']} characters"
                )
            )
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            problems.append(
                _Problem(
                    path,
                    "schema-max-length",
                    f"{path} must be at most {schema['maxLength']} characters, got {len(value)}",
                )
            )
        if "pattern" in schema and not _go_pattern(schema["pattern"]).search(value):
            problems.append(_Problem(path, "schema-pattern", f"{path} must match {schema['pattern']}"))
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            problems.append(
                _Problem(path, "schema-minimum", f"{path} must be at least {schema['minimum']}, got {value}")
            )
        if "maximum" in schema and value > schema["maximum"]:
            problems.append(
                _Problem(path, "schema-maximum", f"{path} must be at most {schema['maximum']}, got {value}")
            )
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(str(v) for v in schema["enum"])
        problems.append(_Problem(path, "schema-enum", f"{path} must be one of {allowed}, got {value!r}"))
    return problems


# Kubernetes object names: a DNS subdomain (RFC 1123), lowercase.
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")


def _check_metadata(obj: Mapping[str, Any]) -> list[_Problem]:
    metadata = obj.get("metadata")
    if metadata is None:
        return [_Problem("metadata.name", "name-required", "metadata.name is required")]
    if not isinstance(metadata, dict):
        return [
            _Problem(
                "metadata", "schema-type", f"metadata must be of type object, got {_type_name(metadata)}"
            )
        ]
    problems: list[_Problem] = []
    name = metadata.get("name")
    if name is None or name == "":
        problems.append(_Problem("metadata.name", "name-required", "metadata.name is required"))
    elif not isinstance(name, str):
        problems.append(_Problem("metadata.name", "name-invalid", "metadata.name must be a string"))
    elif len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        problems.append(
            _Problem(
                "metadata.name",
                "name-invalid",
                "metadata.name must be a lowercase RFC 1123 subdomain: at most 253 characters of "
                "[a-z0-9.-], starting and ending with a letter or digit"
                + (f", got {len(name)} characters" if len(name) > 253 else ""),
            )
        )
    namespace = metadata.get("namespace")
    if namespace is not None and (
        not isinstance(namespace, str) or len(namespace) > 63 or not _DNS_LABEL.match(namespace)
    ):
        problems.append(
            _Problem(
                "metadata.namespace",
                "namespace-invalid",
                "metadata.namespace must be a lowercase RFC 1123 label: at most 63 characters of [a-z0-9-]",
            )
        )
    return problems


# Rules of rules.check_spec that the CRD does not carry: the API server would admit such an object
# and the operator refuse it at reconcile time. The CRD carries every rule today.
_ONLY_AT_RECONCILE: frozenset[tuple[str, str]] = frozenset()


def _stage_of(violation: rules.Violation) -> Stage:
    if (violation.rule, violation.field) in _ONLY_AT_RECONCILE:
        return Stage.OPERATOR
    return Stage.API_SERVER


def check_manifest(manifest: Manifest, policy: Policy) -> list[Finding]:
    """Everything wrong with one DurableTopic on its own: schema, CEL rules, floors."""

    def finding(
        field: str, rule: str, message: str, stage: Stage, severity: Severity = Severity.ERROR
    ) -> Finding:
        return Finding(
            manifest.file,
            manifest.document,
            manifest.line,
            manifest.name,
            field,
            rule,
            message,
            stage,
            severity,
        )

    found = [
        finding("", "duplicate-key", f"line {line}: {message}", Stage.API_SERVER, Severity.WARNING)
        for line, message in manifest.warnings
    ]
    obj = manifest.object
    api_version = obj.get("apiVersion")
    if api_version != crd.API_VERSION:
        found.append(
            finding(
                "apiVersion",
                "unknown-version",
                f"apiVersion must be {crd.API_VERSION}, got {api_version!r}: the API server has no other version",
                Stage.API_SERVER,
            )
        )
        return found
    found += [finding(p.field, p.rule, p.message, Stage.API_SERVER, p.severity) for p in _check_metadata(obj)]

    prepared = prepare({k: v for k, v in obj.items() if k not in ("metadata", "status")})
    schema_problems = check_schema(prepared, _root_schema(), "")
    spec = prepared.get("spec")
    violations: list[rules.Violation] = []
    if isinstance(spec, dict):
        violations = rules.check_spec(spec, manifest.name or None)
    covered = {v.field for v in violations}
    found += [
        finding(p.field, p.rule, p.message, Stage.API_SERVER, p.severity)
        for p in schema_problems
        if p.field not in covered
    ]
    found += [finding(v.field, v.rule, v.message, _stage_of(v)) for v in violations]
    if isinstance(spec, dict):
        rf, min_isr = spec.get("replicationFactor"), spec.get("minInSyncReplicas")
        if isinstance(rf, int) and isinstance(min_isr, int) and _is_int(rf) and _is_int(min_isr):
            found += [
                finding(v.field, v.rule, v.message, Stage.ADMISSION_POLICY)
                for v in rules.check_policy(rf, min_isr, policy)
            ]
    return found


def check_change(old: Manifest, new: Manifest) -> list[Finding]:
    """The CRD's transition rules, for an update of `old` to `new` (the same object)."""
    old_spec, new_spec = old.admitted_spec(), new.admitted_spec()
    if old_spec is None or new_spec is None:
        return []
    return [
        Finding(new.file, new.document, new.line, new.name, v.field, v.rule, v.message, Stage.API_SERVER)
        for v in rules.check_transition(old_spec, new_spec)
    ]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate(
    paths: Sequence[str], policy: Policy | None = None, previous: Sequence[str] = (), *, strict: bool = False
) -> Report:
    """Check every DurableTopic in `paths`; with `previous`, also as updates of the objects there.

    `strict` makes unknown fields errors, as `kubectl apply --validate=strict` (kubectl's default) does;
    duplicate keys stay warnings, as kubectl lets the last one win even then.
    """
    policy = policy or Policy()
    report = load(paths)
    for manifest in report.manifests:
        report.findings += check_manifest(manifest, policy)
    if previous:
        old_report = load(previous)
        report.errors += old_report.errors
        old_by_key = {m.key: m for m in old_report.manifests}
        for manifest in report.manifests:
            old = old_by_key.get(manifest.key)
            if old is not None:
                report.findings += check_change(old, manifest)
    if strict:
        report.findings = [
            Finding(**{**asdict(f), "severity": Severity.ERROR}) if f.rule == UNKNOWN_FIELD else f
            for f in report.findings
        ]
    return report


# --------------------------------------------------------------------------------------- output


def render_table(report: Report) -> str:
    """One line per finding and a summary; read errors are the caller's to print (to stderr)."""
    out = io.StringIO()
    for f in report.findings:
        name = f.name or "<no name>"
        field_part = f"{f.field}: " if f.field and not f.message.startswith(f.field) else ""
        refused = f"; refused by {f.stage}" if f.severity is Severity.ERROR else ""
        print(
            f"{f.file}:{f.line} [{f.document}] {name}: {f.severity}: {field_part}{f.message} "
            f"(rule {f.rule}{refused})",
            file=out,
        )
    invalid = {(f.file, f.document) for f in report.findings if f.severity is Severity.ERROR}
    verdict = "valid" if report.valid else ("unreadable input" if report.errors else "invalid")
    print(
        f"{verdict}: {len(report.manifests)} DurableTopic(s) in {report.files} file(s), {len(invalid)} invalid, "
        f"{report.skipped} other object(s) skipped",
        file=out,
    )
    return out.getvalue().rstrip("\n")


def render_json(report: Report) -> str:
    return json.dumps(report.as_dict(), indent=2)
