"""JSON Schema of a whole config file, for editors (``run-pipeline --schema``)."""

from __future__ import annotations

from typing import Any

from cadence.pipelines.registry import Registry
from cadence.pipelines.schema import CadenceConfig


def config_json_schema(registry: Registry) -> dict[str, Any]:
    """The top-level schema with ``pipeline`` items as a union over every processor type."""
    schema = CadenceConfig.model_json_schema()
    defs = schema.setdefault("$defs", {})
    variants = []
    for spec in registry.all_specs():
        entry = spec.params.model_json_schema(ref_template="#/$defs/{model}")
        defs.update(entry.pop("$defs", {}))
        entry["title"] = f"{spec.name} processor"
        entry["description"] = spec.description
        entry.setdefault("properties", {})
        entry["properties"] = {"type": {"const": spec.name}, **entry["properties"]}
        entry["required"] = ["type", *entry.get("required", [])]
        entry["additionalProperties"] = False
        variants.append(entry)
    # `module:Class` types are only known at run time: accept any such entry.
    variants.append({
        "title": "your own processor class",
        "type": "object",
        "properties": {"type": {"type": "string", "pattern": "^[\\w.]+:[\\w]+$"}},
        "required": ["type"],
    })
    schema["properties"]["pipeline"]["items"] = {"anyOf": variants}
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
