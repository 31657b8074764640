"""Model, alias and tenant names, and references (``"demand"``, ``"demand@3"``, ``"demand@production"``)."""

from __future__ import annotations

import re
from typing import Any

from forecasting.errors import InvalidParameterError

__all__ = ["ALIAS_PATTERN", "NAME_PATTERN", "REF_PATTERN", "parse_ref", "validate_alias", "validate_name"]

#: a model, alias or tenant name (:func:`validate_name`); the OpenAPI document's path parameters state it
NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,62}$"
#: an alias (:func:`validate_alias`): a name that is not all digits (a version) nor ``latest``
ALIAS_PATTERN = r"^(?!latest$)(?![0-9]+$)[a-z0-9][a-z0-9_.-]{0,62}$"
#: a reference (:func:`parse_ref`): a name, optionally ``@`` and a version (1 to 10 digits, bounded by
#: ``MAX_VERSION``), an alias or ``latest``
REF_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,62}(@([1-9][0-9]{0,9}|(?![0-9]+$)[a-z0-9][a-z0-9_.-]{0,62}))?$"
_NAME = re.compile(NAME_PATTERN)
#: a version after '@', in or out of the rule: digits, with a sign or not (no alias starts with a sign)
_NUMBER = re.compile(r"^[+-]?\d+$")


def validate_name(value: Any, *, field: str) -> str:
    """Check a model, alias or tenant name: ``^[a-z0-9][a-z0-9_.-]{0,62}$``.

    Names are also folder names under the artifact store, hence the narrow alphabet.

    Raises
    ------
    InvalidParameterError
        Naming ``field``, the rule and the value.
    """
    if not isinstance(value, str) or not _NAME.match(value):
        msg = (
            f"{field} must be 1-63 characters of a-z, 0-9, '_', '.' or '-', starting with a letter or digit, "
            f"got {value!r}"
        )
        raise InvalidParameterError(msg, field=field)
    return value


def validate_alias(alias: Any, *, field: str = "alias") -> str:
    validate_name(alias, field=field)
    if alias.isdigit():
        msg = f"{field} must not be a number (name@3 means version 3), got {alias!r}"
        raise InvalidParameterError(msg, field=field)
    if alias == "latest":
        msg = f"{field} 'latest' is reserved (name@latest is always the newest version)"
        raise InvalidParameterError(msg, field=field)
    return alias


#: the largest version number accepted anywhere (a reference, a path, a body): far beyond any real count, and exact
#: as a JSON number in every client (below 2**53), which a 64-bit bound would not be in the OpenAPI document
MAX_VERSION = 2**31 - 1


def parse_ref(ref: str, *, field: str = "model") -> tuple[str, int | str | None]:
    """Split ``"name"``, ``"name@3"`` or ``"name@alias"`` into ``(name, 3 | "alias" | None)``.

    ``None`` and ``"latest"`` both mean the newest version.

    Raises
    ------
    InvalidParameterError
        A malformed reference, naming ``field``.
    """
    if not isinstance(ref, str):
        msg = (
            f"{field} must be a string like 'demand', 'demand@3' or 'demand@production', "
            f"got {type(ref).__name__}"
        )
        raise InvalidParameterError(msg, field=field)
    name, sep, sel = ref.partition("@")
    validate_name(name, field=field)
    if not sep or sel == "latest":
        return name, None
    if _NUMBER.match(sel):  # 'name@-1' is a version out of the rule, not a malformed alias
        version = int(sel)
        if not 1 <= version <= MAX_VERSION:
            msg = f"{field}: version must be an integer from 1 to {MAX_VERSION}, got {ref!r}"
            raise InvalidParameterError(msg, field=field)
        return name, version
    return name, validate_alias(sel, field=field)

