"""Shell completion scripts for bash, zsh and fish, generated from the command-line parser.

The parser is the single source of the commands and flags; the settings table adds what
each setting's value may be (a word of a fixed list, on/off, a file name, a time zone).
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import available_timezones

from foot_traffic.config.parsers import FILE_PARSERS, Choice, boolean
from foot_traffic.config.settings import SPECS_BY_NAME

SHELLS = ("bash", "zsh", "fish")
PROGRAM = "foot-traffic"


@dataclass(frozen=True, slots=True)
class Option:
    """One flag (with its aliases) and what its value may be."""

    flags: tuple[str, ...]
    help: str
    takes_value: bool
    words: tuple[str, ...] = ()
    files: bool = False


@dataclass(frozen=True, slots=True)
class Command:
    """A subcommand and its flags."""

    name: str
    help: str
    options: tuple[Option, ...]
    words: tuple[str, ...] = ()


def describe(parser: argparse.ArgumentParser) -> tuple[tuple[Option, ...], tuple[Command, ...]]:
    """The top-level flags and the subcommands of a parser, each with its flags."""
    commands: list[Command] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, sub in action.choices.items():
                positional = (str(c) for a in sub._actions if not a.option_strings and a.choices for c in a.choices)
                commands.append(Command(name, helps.get(name, ""), _options(sub._actions), tuple(positional)))
    return _options(parser._actions), tuple(commands)


def _options(actions: Iterable[argparse.Action]) -> tuple[Option, ...]:
    options = []
    for action in actions:
        if not action.option_strings:
            continue
        takes_value = action.nargs != 0
        words: tuple[str, ...] = tuple(str(c) for c in action.choices) if action.choices else ()
        files = False
        spec = SPECS_BY_NAME.get(action.dest)
        if spec is not None:
            if isinstance(spec.parse, Choice):
                words = spec.parse.options
            elif spec.parse is boolean:
                words = ("true", "false")
            elif spec.parse in FILE_PARSERS:
                files = True
            elif spec.name == "timezone":
                words = tuple(sorted(available_timezones()))
        elif takes_value and isinstance(action.metavar, str) and action.metavar.endswith(("FILE", "DIR", "PATH")):
            files = True
        summary = (action.help or "").split(". ")[0].rstrip(".")
        options.append(Option(tuple(action.option_strings), summary, takes_value, words, files))
    return tuple(options)


def script(shell: str, parser: argparse.ArgumentParser) -> str:
    """The completion script of ``shell`` (one of SHELLS) for ``parser``."""
    top, commands = describe(parser)
    if shell == "fish":
        return _fish(top, commands)
    body = _bash(top, commands)
    if shell == "zsh":
        # zsh runs bash completion functions through its bashcompinit layer
        return f"#compdef {PROGRAM}\nautoload -U +X bashcompinit && bashcompinit\n{body}"
    return body


def _bash(top: tuple[Option, ...], commands: tuple[Command, ...]) -> str:
    # one case branch per distinct reply, so a long word list (time zones) appears once
    replies: dict[str, list[str]] = {}
    for command in commands:
        for option in command.options:
            if not option.takes_value:
                continue
            if option.files:
                reply = 'COMPREPLY=($(compgen -f -- "$cur"))'
            elif option.words:
                reply = f'COMPREPLY=($(compgen -W {shlex.quote(" ".join(option.words))} -- "$cur"))'
            else:
                reply = "COMPREPLY=()"  # a free value: nothing to offer
            replies.setdefault(reply, []).extend(f'"{command.name} {flag}"' for flag in option.flags)
    value_cases = [
        f"        {'|'.join(patterns)})\n            {reply}; return ;;" for reply, patterns in replies.items()
    ]
    flag_cases = [
        f'        {command.name}) COMPREPLY=($(compgen -W {_words(command)} -- "$cur")) ;;' for command in commands
    ]
    names = " ".join(command.name for command in commands)
    top_words = shlex.quote(" ".join([*(c.name for c in commands), *_flags(top)]))
    function = "_foot_traffic"
    lines = [
        f'# {PROGRAM} completion for bash: eval "$({PROGRAM} completion bash)"',
        f"{function}() {{",
        '    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"',
        "    # --flag=value: bash splits at '=' (COMP_WORDBREAKS)",
        '    if [[ $cur == "=" ]]; then cur=""; elif [[ $prev == "=" ]]; then prev="${COMP_WORDS[COMP_CWORD-2]}"; fi',
        '    local command="" word i',
        "    for ((i = 1; i < COMP_CWORD; i++)); do",
        '        word="${COMP_WORDS[i]}"',
        f"        case $word in {names.replace(' ', '|')}) command=$word; break ;; esac",
        "    done",
        "    if [[ -z $command ]]; then",
        f'        COMPREPLY=($(compgen -W {top_words} -- "$cur")); return',
        "    fi",
        "    if [[ $prev == -* ]]; then",
        '        case "$command $prev" in',
        *value_cases,
        "        esac",
        "    fi",
        "    [[ $cur == -* || -z $cur ]] || return 0",
        "    case $command in",
        *flag_cases,
        "    esac",
        "}",
        f"complete -o default -F {function} {PROGRAM}",
        "",
    ]
    return "\n".join(lines)


def _words(command: Command) -> str:
    """A command's positional choices and long flags, quoted as one shell word."""
    return shlex.quote(" ".join([*command.words, *_flags(command.options)]))


def _flags(options: Iterable[Option]) -> list[str]:
    return [flag for option in options for flag in option.flags if flag.startswith("--")]


def _fish_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _fish(top: tuple[Option, ...], commands: tuple[Command, ...]) -> str:
    lines = [f"# {PROGRAM} completion for fish: {PROGRAM} completion fish | source", f"complete -c {PROGRAM} -f"]
    names = " ".join(command.name for command in commands)
    for command in commands:
        lines.append(
            f"complete -c {PROGRAM} -n {_fish_quote('not __fish_seen_subcommand_from ' + names)} "
            f"-a {command.name} -d {_fish_quote(command.help)}"
        )
    lines.extend(_fish_options(top, f"not __fish_seen_subcommand_from {names}"))
    for command in commands:
        seen = f"__fish_seen_subcommand_from {command.name}"
        if command.words:
            lines.append(f"complete -c {PROGRAM} -n {_fish_quote(seen)} -a {_fish_quote(' '.join(command.words))}")
        lines.extend(_fish_options(command.options, seen))
    return "\n".join(lines) + "\n"


def _fish_options(options: Iterable[Option], condition: str) -> list[str]:
    lines = []
    for option in options:
        for flag in option.flags:
            short = f"-l {flag[2:]}" if flag.startswith("--") else f"-s {flag[1:]}"
            if option.files:
                value = " -r -F"
            elif option.words:
                value = f" -x -a {_fish_quote(' '.join(option.words))}"
            elif option.takes_value:
                value = " -x"
            else:
                value = ""
            lines.append(
                f"complete -c {PROGRAM} -n {_fish_quote(condition)} {short}{value} -d {_fish_quote(option.help)}"
            )
    return lines
