"""From a pydantic model to the OpenAPI v3 structural schema a CustomResourceDefinition carries.

Pydantic's JSON schema (by alias) is converted node by node: references resolved, optional fields
(`X | None`) made plain, `title` and `required` of nested nodes dropped where the API server does not
want them, and the descriptions kept, so that `kubectl explain` shows the model's field descriptions.
Each CRD says which defaults are written into stored objects and which CEL rules sit on which model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

_DROPPED = frozenset({"title", "default"})
Validations = list[dict[str, str]]


@dataclass(frozen=True, slots=True)
class Conversion:
    """`defaulted`: the properties (by name, at any depth) whose default is written into the schema, the
    scalar ones a reader of a stored object should see; `rules`: CEL validations by model name."""

    definitions: Mapping[str, Any]
    defaulted: frozenset[str] = frozenset()
    rules: Mapping[str, Validations] = field(default_factory=dict)

    def node(self, schema: Mapping[str, Any], name: str | None = None) -> dict[str, Any]:
        """Pydantic's JSON schema of one node (the property `name`) as a structural schema."""
        if "$ref" in schema:
            target = schema["$ref"].rsplit("/", 1)[-1]
            resolved = self.node(self.definitions[target], name)
            if "description" in schema:
                resolved["description"] = schema["description"]
            if "default" in schema and name in self.defaulted:
                resolved["default"] = schema["default"]
            if validations := self.rules.get(target):
                resolved["x-kubernetes-validations"] = validations
            return resolved
        if "anyOf" in schema:
            options = [o for o in schema["anyOf"] if o.get("type") != "null"]
            assert len(options) == 1, schema
            merged = {**options[0], **{k: v for k, v in schema.items() if k != "anyOf"}}
            return self.node(merged, name)
        out: dict[str, Any] = {k: v for k, v in schema.items() if k not in _DROPPED | {"properties", "items"}}
        if "default" in schema and name in self.defaulted:
            out["default"] = schema["default"]
        out.pop("required", None)
        if schema.get("type") == "object" or "properties" in schema:
            out["type"] = "object"
            if "properties" in schema:
                out["properties"] = {
                    key: self.node(value, key) for key, value in schema["properties"].items()
                }
                if schema.get("required"):
                    out["required"] = list(schema["required"])
            additional = schema.get("additionalProperties")
            if isinstance(additional, dict):
                out["additionalProperties"] = self.nested(additional)
            elif "additionalProperties" in out:
                del out["additionalProperties"]
        if "items" in schema:
            out["items"] = self.nested(schema["items"])
        return out

    def nested(self, schema: Mapping[str, Any]) -> dict[str, Any]:
        """The schema of a list's items or a map's values: the field that holds them describes them."""
        nested = self.node(schema)
        nested.pop("description", None)
        return nested


def model_schema(
    model: type[BaseModel],
    *,
    defaulted: frozenset[str] = frozenset(),
    rules: Mapping[str, Validations] | None = None,
) -> dict[str, Any]:
    """The structural schema of `model` (by alias), described by the model's docstring."""
    document = model.model_json_schema(by_alias=True)
    definitions = document.pop("$defs", {})
    schema = Conversion(definitions, defaulted, rules or {}).node(document)
    schema["description"] = " ".join((model.__doc__ or "").split())
    return schema
