"""The package's rooms import one way only (docs/architecture.md).

client/ knows neither LangChain nor the server; langchain/ uses only the client's public
list; server/ takes only the shared protocol. Read from the source, so a wrong import
anywhere (a function body, a TYPE_CHECKING block) fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "langchain_qwen_imagesearch"
ROOT = Path(__file__).resolve().parents[2] / PACKAGE
ROOMS = ("client", "langchain", "server")

# What each part may import from the package, besides its own room.
ALLOWED: dict[str, tuple[str, ...]] = {
    "protocol": (),
    "client": (f"{PACKAGE}.protocol",),
    "langchain": (f"{PACKAGE}.client",),
    "server": (f"{PACKAGE}.protocol",),
}


def room_of(module: str) -> str:
    """``client``, ``langchain``, ``server``, ``protocol``, or ``top`` (the facade and CLI)."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in (*ROOMS, "protocol"):
        return parts[1]
    return "top"


def module_name(path: Path) -> str:
    relative = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_imports(path: Path) -> list[str]:
    """Every module of this package that ``path`` imports, wherever the import stands."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    this = module_name(path).split(".")
    is_package = path.name == "__init__.py"
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = this if is_package else this[:-1]
                base = base[: len(base) - (node.level - 1)]
                found.append(".".join([*base, node.module] if node.module else base))
            elif node.module:
                found.append(node.module)
    return [name for name in found if name == PACKAGE or name.startswith(f"{PACKAGE}.")]


SOURCES = sorted(ROOT.rglob("*.py"))


def violations(path: Path) -> list[str]:
    importer = module_name(path)
    room = room_of(importer)
    wrong: list[str] = []
    for imported in package_imports(path):
        target = room_of(imported)
        if room == "top" or target == room:
            continue
        if imported not in ALLOWED[room]:
            wrong.append(f"{importer} ({room}) imports {imported}")
        private = any(part.startswith("_") for part in imported.split(".")[1:])
        if private:
            wrong.append(f"{importer} imports the private module {imported} of {target}")
    return wrong


@pytest.mark.parametrize("path", SOURCES, ids=[module_name(p) for p in SOURCES])
def test_imports_go_one_way(path: Path) -> None:
    assert violations(path) == []


@pytest.mark.parametrize(
    ("importer", "imported", "wrong"),
    [
        ("client/_client.py", f"{PACKAGE}.langchain", True),
        ("client/_client.py", f"{PACKAGE}.server.engine", True),
        ("langchain/_tool.py", f"{PACKAGE}.client._images", True),
        ("langchain/_tool.py", f"{PACKAGE}.server", True),
        ("langchain/_tool.py", f"{PACKAGE}.protocol", True),
        ("server/responder.py", f"{PACKAGE}.client", True),
        ("server/responder.py", f"{PACKAGE}.langchain", True),
        ("langchain/_tool.py", f"{PACKAGE}.client", False),
        ("server/responder.py", f"{PACKAGE}.protocol", False),
    ],
)
def test_the_check_catches_each_wrong_direction(
    tmp_path: Path, importer: str, imported: str, wrong: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rule itself, on a module planted in a copy of the layout."""
    fake_root = tmp_path / PACKAGE
    planted = fake_root / importer
    planted.parent.mkdir(parents=True)
    planted.write_text(f"def later() -> None:\n    import {imported}\n", encoding="utf-8")
    monkeypatch.setattr(f"{__name__}.ROOT", fake_root)

    assert bool(violations(planted)) is wrong
