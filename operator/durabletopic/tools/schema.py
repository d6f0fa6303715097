"""The API server's checks of a DurableTopic, emulated: null pruning, defaulting, the structural
schema walked from the CRD (`crd.build()`), and the object name's rules."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from durabletopic.core import crd
from durabletopic.core.reasons import Severity

UNKNOWN_FIELD = "unknown-field"


@cache
def root_schema() -> dict[str, Any]:
    version = crd.build()["spec"]["versions"][0]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def prepare(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The object after the API server's defaulting: non-nullable nulls pruned, defaults set."""
    prepared = _prepare(dict(obj), root_schema())
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


def type_name(value: Any) -> str:
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
class Problem:
    field: str
    rule: str
    message: str
    severity: Severity = Severity.ERROR


def _child(path: str, key: str, schema: Mapping[str, Any]) -> str:
    if key in (schema.get("properties") or {}):
        return f"{path}.{key}" if path else key
    return f"{path}[{key}]"


def check_schema(value: Any, schema: Mapping[str, Any], path: str) -> list[Problem]:
    """The structural schema's checks, as the API server makes them (after `prepare`)."""
    expected = schema.get("type")
    if expected and not _has_type(value, expected):
        return [Problem(path, "schema-type", f"{path} must be of type {expected}, got {type_name(value)}")]
    problems: list[Problem] = []
    if isinstance(value, dict):
        for required in schema.get("required") or []:
            if required not in value:
                field = f"{path}.{required}" if path else required
                problems.append(Problem(field, "schema-required", f"{field} is required"))
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
                    Problem(
                        child,
                        UNKNOWN_FIELD,
                        f"unknown field {child}: the API server drops it (kubectl --validate=strict refuses it)",
                        Severity.WARNING,
                    )
                )
        if "maxProperties" in schema and len(value) > schema["maxProperties"]:
            problems.append(
                Problem(
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
                Problem(
                    path, "schema-min-length", f"{path} must be at least {schema['minLength']} characters"
                )
            )
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            problems.append(
                Problem(
                    path,
                    "schema-max-length",
                    f"{path} must be at most {schema['maxLength']} characters, got {len(value)}",
                )
            )
        if "pattern" in schema and not _go_pattern(schema["pattern"]).search(value):
            problems.append(Problem(path, "schema-pattern", f"{path} must match {schema['pattern']}"))
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            problems.append(
                Problem(path, "schema-minimum", f"{path} must be at least {schema['minimum']}, got {value}")
            )
        if "maximum" in schema and value > schema["maximum"]:
            problems.append(
                Problem(path, "schema-maximum", f"{path} must be at most {schema['maximum']}, got {value}")
            )
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(str(v) for v in schema["enum"])
        problems.append(Problem(path, "schema-enum", f"{path} must be one of {allowed}, got {value!r}"))
    return problems


# Kubernetes object names: a DNS subdomain (RFC 1123), lowercase.
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")


def check_metadata(obj: Mapping[str, Any]) -> list[Problem]:
    metadata = obj.get("metadata")
    if metadata is None:
        return [Problem("metadata.name", "name-required", "metadata.name is required")]
    if not isinstance(metadata, dict):
        return [
            Problem("metadata", "schema-type", f"metadata must be of type object, got {type_name(metadata)}")
        ]
    problems: list[Problem] = []
    name = metadata.get("name")
    if name is None or name == "":
        problems.append(Problem("metadata.name", "name-required", "metadata.name is required"))
    elif not isinstance(name, str):
        problems.append(Problem("metadata.name", "name-invalid", "metadata.name must be a string"))
    elif len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        problems.append(
            Problem(
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
            Problem(
                "metadata.namespace",
                "namespace-invalid",
                "metadata.namespace must be a lowercase RFC 1123 label: at most 63 characters of [a-z0-9-]",
            )
        )
    return problems


def admitted_spec(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    """The spec as the API server stores it (nulls pruned, defaults set), if it is an object."""
    spec = prepare(obj).get("spec")
    return spec if isinstance(spec, dict) else None
