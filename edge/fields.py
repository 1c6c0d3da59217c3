"""Path-aware readers for the YAML configuration: every problem names its key, says what is wrong
and what to do, and all problems of a file are reported together (a plant engineer fixing a
config over SSH should not need one restart per typo)."""

import os
import re
from pathlib import Path

SLUG = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
METRIC = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class ConfigError(Exception):
    """The configuration is unusable; ``problems`` lists ``"<key>: <what is wrong>. <what to do>"``."""

    def __init__(self, problems: list[str], source: str = "configuration"):
        self.problems = problems
        self.source = source
        super().__init__(f"{source} has {len(problems)} problem(s):\n" + "\n".join(f"  - {p}" for p in problems))


class Section:
    """One mapping of the YAML at ``path`` (e.g. ``devices[0].tags[2]``), collecting problems in ``errors``.

    Unknown keys are problems too: a misspelt ``deadbnad`` must not silently fall back to a default.
    """

    def __init__(self, data, path: str, errors: list[str]):
        self.path, self.errors = path, errors
        if data is None:
            data = {}
        if not isinstance(data, dict):
            self.problem(
                "", f"must be a mapping (key: value lines), got {type(data).__name__}", "Indent its keys under it."
            )
            data = {}
        self.data = data
        self.read: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path and name else (self.path or name)

    def problem(self, name: str, what: str, todo: str = "") -> None:
        self.errors.append(f"{self.key(name) or '(top level)'}: {what}." + (f" {todo}" if todo else ""))

    def has(self, name: str) -> bool:
        return self.data.get(name) is not None

    def raw(self, name: str, default=None):
        self.read.add(name)
        value = self.data.get(name)
        return default if value is None else value

    def section(self, name: str, required: bool = False) -> "Section":
        if required and not self.has(name):
            self.problem(name, "is missing", f"Add a '{name}:' section.")
        return Section(self.raw(name), self.key(name), self.errors)

    def sections(self, name: str, required: bool = False) -> list["Section"]:
        items = self.raw(name, [])
        if not isinstance(items, list):
            self.problem(name, f"must be a list (lines starting with '- '), got {type(items).__name__}")
            return []
        if required and not items:
            self.problem(name, "is empty", f"List at least one entry under '{name}:'.")
        return [Section(item, f"{self.key(name)}[{index}]", self.errors) for index, item in enumerate(items)]

    def text(self, name: str, default: str | None = None, *, required: bool = False, pattern=None, hint: str = ""):
        value = self.raw(name)
        if value is None:
            if required:
                self.problem(name, "is missing", hint or f"Add '{name}: ...'.")
            return default
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            self.problem(name, f"must be text, got {type(value).__name__}", hint)
            return default
        value = str(value)
        if pattern is not None and not pattern.match(value):
            self.problem(name, f"'{value}' is not allowed", hint)
            return default
        return value

    def number(self, name: str, default: float | None = None, *, minimum=None, maximum=None, integer=False):
        value = self.raw(name)
        if value is None:
            return default
        kind = "a whole number" if integer else "a number"
        bad_type = (
            isinstance(value, bool) or not isinstance(value, int | float) or (integer and not isinstance(value, int))
        )
        if bad_type:
            self.problem(name, f"must be {kind}, got {value!r}", "Write it without quotes or units.")
            return default
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            limits = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
            self.problem(name, f"must be {limits}, got {value}")
            return default
        return value

    def choice(self, name: str, options: tuple[str, ...], default: str | None = None, *, required: bool = False):
        value = self.raw(name)
        if value is None:
            if required:
                self.problem(name, "is missing", f"Choose one of: {', '.join(options)}.")
            return default
        if value not in options:
            self.problem(name, f"'{value}' is not one of {', '.join(options)}", "Use one of those words exactly.")
            return default
        return value

    def flag(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.problem(name, f"must be true or false, got {value!r}")
            return default
        return value

    def path_value(self, name: str, base: Path, *, must_exist: bool = True) -> Path | None:
        value = self.text(name)
        if value is None:
            return None
        path = (base / value).resolve() if not Path(value).is_absolute() else Path(value)
        if must_exist and not path.is_file():
            self.problem(
                name, f"file {path} does not exist", "Check the path (relative paths start at the config file)."
            )
        return path

    def secret(self, name: str, base: Path, *, required: bool, what: str) -> str | None:
        """A secret given as ``<name>`` (plain, discouraged), ``<name>_env`` (an environment variable)
        or ``<name>_file`` (a file holding only the secret, e.g. a container secret)."""
        given = [key for key in (name, f"{name}_env", f"{name}_file") if self.has(key)]
        if len(given) > 1:
            self.problem(given[1], f"conflicts with {given[0]}", f"Give {what} one way only.")
            return None
        if not given:
            if required:
                self.problem(name, f"{what} is missing", f"Add '{name}_env: VARIABLE' or '{name}_file: path'.")
            return None
        key = given[0]
        if key == name:
            return self.text(name)
        if key.endswith("_env"):
            variable = self.text(key)
            value = os.environ.get(variable or "")
            if not value:
                self.problem(key, f"environment variable {variable} is not set or empty", f"Export it with {what}.")
            return value or None
        path = self.path_value(key, base)
        if path is None or not path.is_file():
            return None
        value = path.read_text().strip()
        if not value:
            self.problem(key, f"file {path} is empty", f"Put {what} in it.")
        return value or None

    def finish(self) -> None:
        """Report keys that were never read: they are typos or options this version does not have."""
        for name in sorted(set(self.data) - self.read):
            known = ", ".join(sorted(self.read)) or "none"
            self.problem(name, "is not a known option here", f"Check the spelling; known here: {known}.")
