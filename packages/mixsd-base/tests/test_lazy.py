from __future__ import annotations

import sys

import pytest

from mixsd_base import lazy_exports, lazy_table


@pytest.fixture
def package(tmp_path, monkeypatch):
    """A package ``lazypkg`` whose module ``_heavy`` records that it ran."""
    root = tmp_path / "lazypkg"
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "_heavy.py").write_text(
        'import builtins\nbuiltins.HEAVY_RAN = True\n__all__ = ["one", "two"]\none, two = 1, 2\n'
    )
    (root / "_no_all.py").write_text("one = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "lazypkg"
    for name in [m for m in sys.modules if m.startswith("lazypkg")]:
        del sys.modules[name]
    import builtins

    if hasattr(builtins, "HEAVY_RAN"):
        del builtins.HEAVY_RAN


def test_lazy_table_reads_all_without_importing(package):
    import builtins

    table = lazy_table(f"{package}._heavy")
    assert table == {"one": f"{package}._heavy", "two": f"{package}._heavy"}
    assert f"{package}._heavy" not in sys.modules and not hasattr(builtins, "HEAVY_RAN")

    getattr_, dir_ = lazy_exports(package, table)
    assert getattr_("two") == 2 and builtins.HEAVY_RAN
    assert {"one", "two"} <= set(dir_())
    with pytest.raises(AttributeError, match="no attribute 'three'"):
        getattr_("three")


def test_lazy_table_names_given_or_missing(package):
    assert lazy_table(f"{package}._heavy", ["one"]) == {"one": f"{package}._heavy"}
    with pytest.raises(ImportError, match="no literal __all__"):
        lazy_table(f"{package}._no_all")
    with pytest.raises(ImportError, match="no Python source"):
        lazy_table(f"{package}._missing")
