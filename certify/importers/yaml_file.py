"""Reading the YAML files users hand in (region files, system files): ``yaml.safe_load`` only, clear errors."""

from __future__ import annotations

from pathlib import Path

import yaml


def read_yaml(path: str | Path, error: type[ValueError], what: str):
    """The parsed YAML of ``path``; ``error(message)`` naming the file for a missing, unreadable or invalid file.

    ``safe_load`` refuses tags that would construct Python objects (they are reported as invalid YAML).
    """
    p = Path(path)
    if not p.is_file():
        raise error(f"{p}: {what} not found")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{p}: cannot read the {what} ({exc})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error(f"{p}: not valid YAML{where}: {problem}") from None
