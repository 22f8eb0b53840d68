"""docs/architecture.md names every module of the package, each under its package's heading."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "vidwatch"
DOC = ROOT / "docs" / "architecture.md"


def _sections() -> dict[str, str]:
    """The "## Modules" part, by heading: ``""`` for the top level, else each package the heading names."""
    modules = DOC.read_text(encoding="utf-8").split("## Modules", 1)[1]
    sections: dict[str, str] = {}
    current: list[str] = []
    for line in modules.splitlines():
        if line.startswith("Top level"):
            current = [""]
        elif line.startswith("`"):
            current = re.findall(r"`([a-z_]+)/`", line.split(" — ")[0])
        for package in current:
            sections[package] = sections.get(package, "") + line + "\n"
    return sections


def test_every_module_is_in_the_architecture_page() -> None:
    sections = _sections()
    absent = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        package = "/".join(relative.parts[:-1])
        if path.name == "__init__.py" and package:
            continue  # a package's __init__ re-exports; the package has its heading
        if f"`{path.name}`" not in sections.get(package, "") and f"{path.name}`" not in sections.get(package, ""):
            absent.append(str(relative))
    assert not absent, f"docs/architecture.md: expected a line for each module, missing {absent}"
