"""``PiiRedactor``: personal data out of an event before it is stored, by key
path (dropped, or replaced by a keyed hash so joins on it still work) and by
pattern in every string of ``data`` (e-mail addresses, card numbers that pass
the Luhn check, IP addresses, custom regular expressions)."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from plugins.base import ClientInfo, PluginParams, Secret, Transformer

from .paths import path_check, path_delete, path_parts, path_replace, walk

__all__ = ["PiiRedactor", "luhn_valid"]

_BUILTIN = {
    "email": r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
    # 13 to 19 digits, maybe grouped by spaces or dashes; kept only when Luhn-valid.
    "card": r"(?<![0-9A-Za-z])[0-9](?:[ -]?[0-9]){12,18}(?![0-9A-Za-z])",
    # Candidates only: kept when ipaddress parses them.
    "ip": r"(?<![0-9A-Za-z.:])(?:[0-9]{1,3}(?:\.[0-9]{1,3}){3}"
    r"|(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{0,4}|[0-9]{1,3}(?:\.[0-9]{1,3}){3}))"
    r"(?![0-9A-Za-z.:])",
}
Pattern = Literal["email", "card", "ip"]
_DEFAULT_PATTERNS: tuple[Pattern, ...] = ("email", "card", "ip")


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum (ISO/IEC 7812) of a string of digits holds."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        d = ord(char) - 48
        if position % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _is_card(text: str) -> bool:
    digits = text.replace(" ", "").replace("-", "")
    return 13 <= len(digits) <= 19 and luhn_valid(digits)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


_CHECKS = {"card": _is_card, "ip": _is_ip}


class PiiRedactor(Transformer):
    """Redacts personal data: key paths dropped or replaced by an HMAC-SHA256
    keyed hash; e-mail addresses, card numbers (Luhn-checked), IP addresses and
    custom patterns replaced in every string of data."""

    name = "PiiRedactor"

    class Params(PluginParams):
        drop_paths: list[str] = Field(
            default_factory=list,
            description="Fields removed, e.g. data.user.phone (a list on the way: each element).",
        )
        hash_paths: list[str] = Field(
            default_factory=list,
            description="Fields replaced by the hex HMAC-SHA256 under secret of their value "
            "(text as it is, anything else as JSON), e.g. data.userId: the same value always "
            "gives the same hash.",
        )
        secret: Secret | None = Field(
            None, description="The HMAC key for hash_paths (at least 16 characters)."
        )
        patterns: list[Pattern] = Field(
            default_factory=lambda: list(_DEFAULT_PATTERNS),
            description="Built-in patterns replaced in every string of data.",
        )
        custom: dict[str, str] = Field(
            default_factory=dict,
            description="More patterns: a name and a regular expression (Python syntax).",
        )
        replacement: str = Field(
            "[{name}]",
            description="What a match becomes; {name} is the pattern's name.",
        )

        @field_validator("drop_paths", "hash_paths")
        @classmethod
        def _paths(cls, paths: list[str]) -> list[str]:
            for path in paths:
                path_check(path)
                if not path.startswith("data."):
                    raise ValueError(f"{path!r}: redacted fields are inside data (data.<path>)")
            return paths

        @field_validator("custom")
        @classmethod
        def _regexes(cls, custom: dict[str, str]) -> dict[str, str]:
            for name, regex in custom.items():
                if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                    raise ValueError(f"{name!r}: a pattern's name is a word (letters, digits, _)")
                try:
                    compiled = re.compile(regex)
                except re.error as exc:
                    raise ValueError(f"{name}: not a regular expression: {exc}") from None
                if compiled.match(""):
                    raise ValueError(f"{name}: the pattern matches the empty string")
            return custom

        @model_validator(mode="after")
        def _secret_for_hashes(self) -> PiiRedactor.Params:
            if self.hash_paths and (
                self.secret is None or len(self.secret.get_secret_value()) < 16
            ):
                raise ValueError("hash_paths need a secret of at least 16 characters")
            return self

    params: PiiRedactor.Params

    def __init__(self, params: PiiRedactor.Params) -> None:
        super().__init__(params)
        self._drop = [path_parts(p) for p in params.drop_paths]
        self._hash = [path_parts(p) for p in params.hash_paths]
        key = params.secret.get_secret_value().encode() if params.secret is not None else b""
        self._key = key
        named = {n: _BUILTIN[n] for n in dict.fromkeys(params.patterns)} | params.custom
        self._names = list(named)
        # One alternation, one pass per string: the group that matched names it.
        self._regex = (
            re.compile("|".join(f"(?P<{n}>{rx})" for n, rx in named.items())) if named else None
        )
        self._replacements = {n: params.replacement.replace("{name}", n) for n in named}

    def _hash_value(self, value: Any) -> str:
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()

    def _replace(self, match: re.Match[str]) -> str:
        name = match.lastgroup
        assert name is not None
        check = _CHECKS.get(name)
        if check is not None and name not in self.params.custom and not check(match.group()):
            return match.group()
        return self._replacements[name]

    def _scrub(self, text: str) -> str:
        assert self._regex is not None
        return self._regex.sub(self._replace, text)

    def transform(self, event: dict[str, Any], client: ClientInfo) -> dict[str, Any]:
        for parts in self._drop:
            path_delete(event, parts)
        for parts in self._hash:
            path_replace(event, parts, self._hash_value)
        if self._regex is not None and event.get("data") is not None:
            # (a keyed hash is 64 hex digits: no built-in pattern matches it)
            event["data"] = walk(event["data"], self._scrub)
        return event
