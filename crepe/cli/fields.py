"""Command-line flags generated from dataclass fields, and parsed flags turned back into the dataclasses.

A field is a flag when its metadata has ``help``; the flag's default, type and choices come from the
field, so a new option is its field (with help metadata) plus the code that reads it. Metadata keys:

- ``help``: the help line (the declared default is appended); ``flag``: the spelling when it is not
  ``--<prefix><name-with-dashes>``; ``group``: the argparse group the flag is listed in; ``metavar``:
  the value's name in the usage line (``REPO``);
- ``choices``: a tuple, or a function returning one (argparse checks it); ``names``: the same, only
  listed in the help (the config checks the value with its own message);
- ``parse``: text -> the field's value (``Pattern.parse``); on a nested config, text -> the base its
  own fields' flags override (``--config FILE`` under ``--alpha``, ``--allocation owl`` under ``--owl-m``);
- ``unset``: the flag defaults to None ("not given") and the caller decides (sparsity: 0.5 or N/M);
- on a nested config: ``prefix`` of its fields' flags (default ``<name>-``); ``fields``: metadata for
  the fields of a config declared elsewhere; on an optional one, ``switch``: True for an on/off flag
  named after the field (``--permute``), or the name of the field whose flag turns it on
  (``--repruning dsnot``).

Why a walker and not transformers' ``HfArgumentParser``: that parser reads flat dataclasses only,
spells flags with underscores and turns booleans into ``--x/--no_x``, so it cannot keep today's
spellings; nor does it know nested frozen configs, optional configs turned on by one flag, a base read
from one flag and overridden by others, or None defaults that mean "the method's own". These rules,
about a hundred lines, are all ``python -m crepe.prune`` needs.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from crepe.run.options import default_of


@dataclass(frozen=True)
class Flag:
    """One generated flag: the field ``path`` from the root dataclass (("prune", "crepe", "alpha")),
    how the value is stored (``dest``), read back (``parse``; ``keep``: None keeps the field's default or
    base) and what argparse gets (``option``, ``kwargs``, ``text`` and the ``shown`` default of its help,
    ``group``). ``role``: value, base (of a nested config) or switch (turns an optional one on)."""

    path: tuple[str, ...]
    option: str
    kwargs: dict[str, Any]
    text: str
    shown: Any = None
    group: str | None = None
    parse: Callable[[Any], Any] | None = None
    keep: bool = False
    role: str = "value"

    @property
    def dest(self) -> str:
        return self.option.lstrip("-").replace("-", "_")


def flags_of(kind: type, prefix: str = "", path: tuple[str, ...] = (), group: str | None = None,
             based: bool = False, overlay: dict[str, dict] | None = None, key: str | None = None) -> list[Flag]:
    """The flags of dataclass ``kind``'s fields, nested configs walked in field order. ``based``: a
    flag of the parent gives the base these override, so each defaults to None (keep); ``key``: the
    field whose flag turns the optional parent on."""
    out: list[Flag] = []
    hints = typing.get_type_hints(kind)
    for f in dataclasses.fields(kind):
        md = {**f.metadata, **(overlay or {}).get(f.name, {})}
        where, grp, sub = path + (f.name,), md.get("group", group), _config_type(hints[f.name], md)
        if sub is None:
            if "help" in md:
                out.append(_value_flag(kind, f.name, md, prefix, where, grp, based or bool(md.get("unset")), f.name == key))
            continue
        option = md.get("flag", f"--{f.name.replace('_', '-')}")
        if "parse" in md:
            out.append(Flag(where, option, {"default": None}, md["help"], None, grp, md["parse"], True, "base"))
        if md.get("switch") is True:
            out.append(Flag(where, option, {"action": "store_true"}, md["help"], None, grp, role="switch"))
        switch = md.get("switch") if isinstance(md.get("switch"), str) else None
        out.extend(flags_of(sub, md.get("prefix", f"{f.name}-"), where, grp, based or "parse" in md, md.get("fields"), switch))
    return out


def add_flags(ap: argparse.ArgumentParser, kind: type, groups: dict[str, Any] | None = None,
              only: Iterable[str] | None = None, rename: Callable[[str], str] | None = None,
              defaults: dict[str, Any] | None = None) -> list[Flag]:
    """Add ``kind``'s flags to ``ap`` (or to ``groups[flag.group]``). ``only``: top-level field names;
    ``rename``: field name -> flag name (dest); ``defaults``: field name -> a different default."""
    flags = [f for f in flags_of(kind) if only is None or f.path[0] in set(only)]
    for flag in flags:
        kwargs, shown = dict(flag.kwargs), flag.shown
        if defaults and flag.path[-1] in defaults:
            kwargs["default"] = shown = defaults[flag.path[-1]]
        option = f"--{rename(flag.path[-1]).replace('_', '-')}" if rename else flag.option
        (groups or {}).get(flag.group, ap).add_argument(option, help=_help(flag.text, shown), **kwargs)
    return flags


def from_args(kind: type, args: argparse.Namespace, **given: Any) -> Any:
    """``kind`` built from parsed flags (:func:`flags_of`); ``given`` fields are taken as they are."""
    flags = {(f.path, f.role): f for f in flags_of(kind)}
    return kind(**{**_values(kind, args, flags, (), set(given)), **given})


def choices_of(kind: type, name: str) -> tuple[str, ...]:
    """The ``choices`` metadata of field ``name`` of ``kind`` (a function's result when it is one)."""
    return _call(kind.__dataclass_fields__[name].metadata["choices"])


def _values(kind: type, args: argparse.Namespace, flags: dict, path: tuple[str, ...], skip: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    hints = typing.get_type_hints(kind)
    for f in dataclasses.fields(kind):
        where = path + (f.name,)
        if f.name in skip:
            continue
        if (where, "value") in flags:
            flag = flags[(where, "value")]
            value = getattr(args, flag.dest)
            if value is not None or not flag.keep:
                out[f.name] = flag.parse(value) if flag.parse and value is not None else value
            continue
        sub = _plain(hints[f.name])
        walked = any(p[: len(where)] == where for p, _ in flags)
        if not walked or not _is_on(f, args, flags, where):
            continue
        inner = _values(sub, args, flags, where, set())
        base = flags.get((where, "base"))
        text = getattr(args, base.dest) if base else None
        out[f.name] = dataclasses.replace(base.parse(text), **inner) if text is not None else sub(**inner)
    return out


def _is_on(f: dataclasses.Field, args: argparse.Namespace, flags: dict, where: tuple[str, ...]) -> bool:
    """Whether an optional nested config was asked for (a non-optional one always is)."""
    switch = f.metadata.get("switch")
    if switch is True:
        return bool(getattr(args, flags[(where, "switch")].dest))
    if isinstance(switch, str):
        return getattr(args, flags[(where + (switch,), "value")].dest) is not None
    return f.default is not None


def _value_flag(kind: type, name: str, md: dict, prefix: str, path: tuple[str, ...], group: str | None,
                keep: bool, key: bool) -> Flag:
    """``key``: this flag turns its optional config on, so it defaults to None (off)."""
    default, hint = None if key else default_of(kind, name), _plain(typing.get_type_hints(kind)[name])
    option = md.get("flag", f"--{(prefix + name).replace('_', '-')}")
    keep, names = keep or key, md.get("names")
    text = md["help"] + (f" (one of {', '.join(_call(names))})" if names else "")
    shown = str(default) if md.get("parse") and default is not None else default
    kwargs: dict[str, Any] = {"default": None if keep else shown}
    if hint is bool:
        kwargs["action"] = "store_true" if default is False else argparse.BooleanOptionalAction
        shown = None  # an on/off pair says which is the default itself
    elif hint in (int, float) and not md.get("parse"):
        kwargs["type"] = hint
    if "choices" in md:
        kwargs["choices"] = _call(md["choices"])
    if "metavar" in md:
        kwargs["metavar"] = md["metavar"]
    return Flag(path, option, kwargs, text, shown, group, md.get("parse"), keep)


def _config_type(hint: Any, md: dict) -> type | None:
    """The nested config a field holds, walked when its own fields (or ``md["fields"]``) declare flags."""
    kind = _plain(hint)
    if not dataclasses.is_dataclass(kind):
        return None
    declares = md.get("fields") or any("help" in f.metadata or "flag" in f.metadata for f in dataclasses.fields(kind))
    return kind if declares else None


def _plain(hint: Any) -> Any:
    """``X`` of ``X | None``."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if typing.get_origin(hint) in (typing.Union, types.UnionType) else hint


def _help(text: str, default: Any) -> str:
    shown = "" if default is None or default == "" else f" (default: {default})"
    return (text + shown).replace("%", "%%")


def _call(value: Any) -> Any:
    return value() if callable(value) else value
