"""How a setting is declared, once: a field of Settings carrying its variable, flag, parser, default, help and group.

``setting(...)`` returns a dataclass field whose default is its default text
parsed, and whose metadata holds the rest; ``specs(Settings)`` reads them back in
declaration order (environ-config's ``environ.var`` and attrs' ``field(metadata=...)``
in one).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple, TypeVar, overload

T = TypeVar("T")

_KEY = "foot_traffic.setting"


@dataclass(frozen=True, slots=True)
class Group:
    """A family of settings, shown together in ``--help``."""

    title: str
    description: str


class Fallback(NamedTuple):
    """An unset setting takes another's value: that setting's variable, and its default text."""

    variable: str
    default: str


@dataclass(frozen=True, slots=True)
class Spec:
    """How one setting is read: its variable, its flag, its parser, default, meaning and group."""

    name: str
    env: str
    parse: Callable[[str], Any]
    default: str | None
    help: str
    group: Group
    aliases: tuple[str, ...] = ()
    secret: bool = False
    fallback: str | None = None
    """The variable whose value an unset setting takes (its default stays None)."""

    @property
    def flag(self) -> str:
        """The command-line flag, derived from the variable's name."""
        return "--" + self.env.lower().replace("_", "-")


@overload
def setting(
    env: str,
    parse: Callable[[str], T],
    default: str,
    help: str,
    *,
    group: Group,
    aliases: tuple[str, ...] = (),
    secret: bool = False,
) -> T: ...
@overload
def setting(
    env: str,
    parse: Callable[[str], T],
    default: None,
    help: str,
    *,
    group: Group,
    aliases: tuple[str, ...] = (),
    secret: bool = False,
    fallback: Fallback,
) -> T: ...
@overload
def setting(
    env: str,
    parse: Callable[[str], T],
    default: None,
    help: str,
    *,
    group: Group,
    aliases: tuple[str, ...] = (),
    secret: bool = False,
) -> T | None: ...
def setting(
    env: str,
    parse: Callable[[str], T],
    default: str | None,
    help: str,
    *,
    group: Group,
    aliases: tuple[str, ...] = (),
    secret: bool = False,
    fallback: Fallback | None = None,
) -> Any:
    """Declare a setting: a field whose default is ``parse(default)`` (or the fallback's), None when unset.

    The parse happens when a Settings is made without this field, not at import.
    """
    text = default if fallback is None else fallback.default
    spec = Spec("", env, parse, default, help, group, aliases, secret, None if fallback is None else fallback.variable)
    factory: Callable[[], Any] = (lambda: None) if text is None else partial(parse, text)
    return dataclasses.field(default_factory=factory, metadata={_KEY: spec})


def specs(cls: type) -> tuple[Spec, ...]:
    """The settings a dataclass declares, in declaration order, each named after its field."""
    return tuple(
        dataclasses.replace(field.metadata[_KEY], name=field.name)
        for field in dataclasses.fields(cls)
        if _KEY in field.metadata
    )
