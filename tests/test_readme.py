"""The README's layout map stays true: every folder it names exists, and every package of rsc is named."""

from __future__ import annotations

import re

from tests.conftest import PROJECT

README = PROJECT / "README.md"
PACKAGE = PROJECT / "platform" / "rsc"


def layout_block() -> list[str]:
    text = README.read_text()
    section = text.split("\n## Layout", 1)[1]
    return re.search(r"```\n(.*?)```", section, flags=re.S).group(1).splitlines()


def named_folders() -> tuple[set[str], set[str]]:
    """(top-level folders, folders under platform/rsc/) that the block names."""
    top, package, inside = set(), set(), False
    for line in layout_block():
        if not line.strip():
            continue
        indented = line.startswith(" ")
        inside = inside if indented else line.split()[0] == "platform/rsc/"
        for token in line.split():
            if not token.endswith("/"):
                break
            (package if indented and inside else top).add(token.rstrip("/"))
    return top, package


def test_every_folder_the_layout_names_exists():
    top, package = named_folders()
    assert top and package
    assert [name for name in top if not (PROJECT / name).is_dir()] == []
    assert [name for name in package if not (PACKAGE / name).is_dir()] == []


def test_every_package_of_rsc_is_in_the_layout():
    _, package = named_folders()
    actual = {path.name for path in PACKAGE.iterdir() if (path / "__init__.py").is_file()}
    assert actual - package == set(), "add them to the README's layout map"


def test_the_readme_gives_the_two_commands():
    text = README.read_text()
    assert "make demo" in text and "make test" in text
