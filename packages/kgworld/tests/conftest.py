"""Shared fixtures: small generated worlds (a fraction of a second each)."""

from __future__ import annotations

import pytest

import kgworld


@pytest.fixture(scope="session")
def small_world() -> kgworld.World:
    return kgworld.generate(kgworld.resolve_config(overrides={"preset": "small", "seed": 7}))


@pytest.fixture(scope="session")
def small_world_dir(tmp_path_factory: pytest.TempPathFactory, small_world: kgworld.World):
    return small_world.write(tmp_path_factory.mktemp("worlds") / "small")
