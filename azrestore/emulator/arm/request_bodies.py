"""Reading request bodies the way ARM validates them: required properties, locations, tags
and choices, with Azure's error codes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from azrestore.emulator.arm.errors import ArmError, invalid_parameter, missing_parameter

__all__ = ["choice", "location_of", "optional_choice", "required", "tags_of", "whole_number"]


def required(body: Mapping[str, Any], name: str, path: str) -> Any:
    """``body[name]``, or Azure's InvalidParameter "Required parameter ... is missing"."""
    value = body.get(name)
    if value is None or value == "":
        raise missing_parameter(path)
    return value


def location_of(body: Mapping[str, Any]) -> str:
    """The resource's location (400 LocationRequired without one)."""
    location = body.get("location")
    if not isinstance(location, str) or not location.strip():
        raise ArmError(
            400, "LocationRequired", "The location property is required for this definition."
        )
    return location


def tags_of(body: Mapping[str, Any]) -> dict[str, str]:
    """The ``tags`` object (strings only)."""
    tags = body.get("tags") or {}
    if not isinstance(tags, dict):
        raise ArmError(400, "InvalidRequestContent", "The 'tags' property must be an object.")
    return {str(k): str(v) for k, v in tags.items()}


def choice(value: Any, allowed: tuple[str, ...], path: str) -> str:
    """``value`` matched case-insensitively to one of ``allowed`` (400 InvalidParameter)."""
    for option in allowed:
        if str(value).lower() == option.lower():
            return option
    raise invalid_parameter(
        path,
        f"The value '{value}' of parameter '{path}' is not allowed. Allowed values: "
        f"{', '.join(allowed)}.",
    )


def optional_choice(value: Any, allowed: tuple[str, ...], path: str) -> str | None:
    """:func:`choice` for an optional property (None stays None)."""
    return None if value is None else choice(value, allowed, path)


def whole_number(value: Any, path: str) -> int:
    """An integer property (a float with no fraction counts; booleans do not)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise invalid_parameter(path, f"The value '{value}' of parameter '{path}' is not valid.")
    return int(value)
