"""The three PATCH flavours the API server accepts for built-in types.

- `application/json-patch+json` (RFC 6902; what `kubectl rollout undo` sends),
- `application/merge-patch+json` (RFC 7386),
- `application/strategic-merge-patch+json` (lists of named things merge by key; `$patch` directives).

The strategic merge keys are looked up by field name, which covers the core pod-template fields
(containers, env, ports, volumes, ...); it is not the full per-type schema the real server uses.
"""

from __future__ import annotations

import copy
from typing import Any

from opsgate.sandbox.kube.objects import JsonObject


class PatchError(ValueError):
    """A patch that cannot be applied (bad pointer, failed `test`, wrong body shape)."""


JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH)

_MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "ports": "containerPort",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "ownerReferences": "uid",
    "conditions": "type",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
}


def apply_patch(document: JsonObject, patch: Any, content_type: str) -> JsonObject:
    if content_type == JSON_PATCH:
        return json_patch(document, patch)
    if content_type == MERGE_PATCH:
        if not isinstance(patch, dict):
            raise PatchError("a merge patch must be a JSON object")
        merged = merge_patch(document, patch)
        assert isinstance(merged, dict)
        return merged
    if content_type == STRATEGIC_MERGE_PATCH:
        if not isinstance(patch, dict):
            raise PatchError("a strategic merge patch must be a JSON object")
        return strategic_merge_patch(document, patch)
    raise PatchError(f"unsupported patch type {content_type!r}")


# --- RFC 6902 -----------------------------------------------------------------------------------


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"JSON pointer {path!r} must start with '/'")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _list_index(container: list[Any], token: str, *, for_insert: bool) -> int:
    if token == "-" and for_insert:
        return len(container)
    if not token.isdigit():
        raise PatchError(f"{token!r} is not a valid array index")
    index = int(token)
    limit = len(container) if for_insert else len(container) - 1
    if index > limit:
        raise PatchError(f"array index {index} is out of bounds")
    return index


def _parent(document: Any, tokens: list[str]) -> Any:
    current = document
    for token in tokens[:-1]:
        if isinstance(current, dict):
            if token not in current:
                raise PatchError(f"path component {token!r} does not exist")
            current = current[token]
        elif isinstance(current, list):
            current = current[_list_index(current, token, for_insert=False)]
        else:
            raise PatchError(f"cannot descend into a scalar at {token!r}")
    return current


def _get(document: Any, path: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return document
    parent = _parent(document, tokens)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"path {path!r} does not exist")
        return parent[last]
    if isinstance(parent, list):
        return parent[_list_index(parent, last, for_insert=False)]
    raise PatchError(f"path {path!r} does not exist")


def _remove(document: Any, path: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent = _parent(document, tokens)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"cannot remove {path!r}: it does not exist")
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_list_index(parent, last, for_insert=False))
    raise PatchError(f"cannot remove {path!r}")


def _add(document: Any, path: str, value: Any, *, replace: bool) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return value
    parent = _parent(document, tokens)
    last = tokens[-1]
    if isinstance(parent, dict):
        if replace and last not in parent:
            raise PatchError(f"cannot replace {path!r}: it does not exist")
        parent[last] = value
    elif isinstance(parent, list):
        if replace:
            parent[_list_index(parent, last, for_insert=False)] = value
        else:
            parent.insert(_list_index(parent, last, for_insert=True), value)
    else:
        raise PatchError(f"cannot set {path!r} inside a scalar")
    return document


def json_patch(document: JsonObject, operations: Any) -> JsonObject:
    if not isinstance(operations, list):
        raise PatchError("a JSON patch must be a list of operations")
    result: Any = copy.deepcopy(document)
    for operation in operations:
        if not isinstance(operation, dict) or "op" not in operation or "path" not in operation:
            raise PatchError(f"malformed JSON patch operation: {operation!r}")
        op, path = operation["op"], operation["path"]
        if op in ("add", "replace", "test") and "value" not in operation:
            raise PatchError(f"JSON patch operation {op!r} at {path!r} needs a value")
        if op == "add":
            result = _add(result, path, copy.deepcopy(operation["value"]), replace=False)
        elif op == "replace":
            result = _add(result, path, copy.deepcopy(operation["value"]), replace=True)
        elif op == "remove":
            _remove(result, path)
        elif op == "move":
            result = _add(result, path, _remove(result, operation["from"]), replace=False)
        elif op == "copy":
            result = _add(result, path, copy.deepcopy(_get(result, operation["from"])), replace=False)
        elif op == "test":
            if _get(result, path) != operation["value"]:
                raise PatchError(f"test operation failed at {path!r}")
        else:
            raise PatchError(f"unknown JSON patch operation {op!r}")
    if not isinstance(result, dict):
        raise PatchError("the patched document is not an object")
    return result


# --- RFC 7386 -----------------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# --- strategic merge ----------------------------------------------------------------------------

_DELETE = object()


def strategic_merge_patch(document: JsonObject, patch: JsonObject) -> JsonObject:
    merged = _merge_map(copy.deepcopy(document), patch)
    if merged is _DELETE or not isinstance(merged, dict):
        raise PatchError("the patch deletes the whole object")
    return merged


def _merge_map(original: JsonObject, patch: JsonObject) -> Any:
    directive = patch.get("$patch")
    if directive == "delete":
        return _DELETE
    if directive == "replace":
        return {key: copy.deepcopy(value) for key, value in patch.items() if key != "$patch"}
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        original = {key: value for key, value in original.items() if key in retain}
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(original.get(field), list):
                original[field] = [item for item in original[field] if item not in value]
            continue
        if value is None:
            original.pop(key, None)
        elif isinstance(value, dict) and isinstance(original.get(key), dict):
            merged = _merge_map(original[key], value)
            if merged is _DELETE:
                original.pop(key, None)
            else:
                original[key] = merged
        elif isinstance(value, list) and key in _MERGE_KEYS and isinstance(original.get(key), list):
            original[key] = _merge_list(original[key], value, _MERGE_KEYS[key])
        else:
            original[key] = _strip_directives(copy.deepcopy(value))
    return original


def _merge_list(original: list[Any], patch: list[Any], merge_key: str) -> list[Any]:
    if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch):
        return [_strip_directives(item) for item in patch if not (isinstance(item, dict) and "$patch" in item)]
    result = copy.deepcopy(original)
    for item in patch:
        if not isinstance(item, dict) or merge_key not in item:
            result.append(copy.deepcopy(item))
            continue
        position = next(
            (
                index
                for index, existing in enumerate(result)
                if isinstance(existing, dict) and existing.get(merge_key) == item[merge_key]
            ),
            None,
        )
        if item.get("$patch") == "delete":
            if position is not None:
                result.pop(position)
            continue
        if position is None:
            result.append(_strip_directives(copy.deepcopy(item)))
        else:
            merged = _merge_map(result[position], item)
            result[position] = merged
    return result


def _strip_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _strip_directives(item) for key, item in value.items() if not key.startswith("$")}
    if isinstance(value, list):
        return [_strip_directives(item) for item in value]
    return value
