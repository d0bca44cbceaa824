"""API errors rendered as ``meta/v1 Status`` objects, as the real server does."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            doc["details"] = self.details
        return doc


def not_found(type_label: str, name: str) -> ApiError:
    plural, _, group = type_label.partition(".")
    return ApiError(
        404, "NotFound", f'{type_label} "{name}" not found', {"name": name, "group": group, "kind": plural}
    )


def already_exists(type_label: str, name: str) -> ApiError:
    plural, _, group = type_label.partition(".")
    return ApiError(
        409,
        "AlreadyExists",
        f'{type_label} "{name}" already exists',
        {"name": name, "group": group, "kind": plural},
    )


def conflict(type_label: str, name: str) -> ApiError:
    plural, _, group = type_label.partition(".")
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {type_label} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
        {"name": name, "group": group, "kind": plural},
    )


_CAUSE_TYPES = (
    ("Duplicate value", "FieldValueDuplicate"),
    ("Not found", "FieldValueNotFound"),
    ("Required value", "FieldValueRequired"),
    ("Unsupported value", "FieldValueNotSupported"),
    ("Forbidden", "FieldValueForbidden"),
    ("Too long", "FieldValueTooLong"),
    ("Too many", "FieldValueTooMany"),
)


def cause_type(message: str) -> str:
    """The StatusCause type of a field error, from its ErrorBody (field.ErrorType.String())."""
    if "in body must be of type" in message:
        return "FieldValueTypeInvalid"
    return next((t for prefix, t in _CAUSE_TYPES if message.startswith(prefix)), "FieldValueInvalid")


def invalid(kind: str, group: str, name: str, causes: list[tuple[str, str]]) -> ApiError:
    """422 with one cause per (field, message), message formatted like the real server."""
    label = f"{kind}.{group}" if group else kind
    joined = ", ".join(f"{f}: {m}" for f, m in causes)
    msg = f'{label} "{name}" is invalid: ' + (f"[{joined}]" if len(causes) > 1 else joined)
    return ApiError(
        422,
        "Invalid",
        msg,
        {
            "name": name,
            "group": group,
            "kind": kind,
            "causes": [{"reason": cause_type(m), "message": m, "field": f} for f, m in causes],
        },
    )
