"""Stage ``world``: generate the kgworld folder of the run (or take the one ``world.path`` names,
or import the question-answer file ``world.qa`` names: ``mixsd._qa``)."""

from __future__ import annotations

from pathlib import Path

from mixsd._context import Artifact, RunContext
from mixsd_base import file_sha256

__all__ = ["run"]


def run(ctx: RunContext) -> Artifact:
    section = ctx.config.world
    if section.path:
        folder = Path(section.path).expanduser().absolute()
        manifest = folder / "manifest.json"
        if not manifest.is_file():
            raise ctx.config.error(("world", "path"), f"{folder} is not a world")
        return Artifact(folder, file_sha256(manifest))
    if section.qa is not None:
        from mixsd._qa import import_world

        return import_world(ctx)
    import kgworld

    folder = ctx.paths.world

    def build() -> None:
        kgworld.generate(section.config).write(folder, overwrite=True)

    inputs = {"config": section.config.to_dict()}
    return Artifact(folder, ctx.units.run("world", "world", inputs, [folder], build))
