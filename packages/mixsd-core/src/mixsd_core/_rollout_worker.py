"""One data-parallel rollout engine: ``python -m mixsd_core._rollout_worker CONFIG RANK WORLD
PROGRESS``, started by ``_rollout_parallel`` with its own ``CUDA_VISIBLE_DEVICES``."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    from mixsd_base import UserError
    from mixsd_core._rollout_config import RolloutConfig
    from mixsd_core._rollout_stage import run_rollout

    path, rank, world, progress = argv
    config = RolloutConfig.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
    try:
        run_rollout(config, shard=(int(rank), int(world)), progress=progress == "1")
    except UserError as exc:
        print(f"error (engine {rank}): {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
