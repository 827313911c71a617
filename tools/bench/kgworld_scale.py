"""Time and peak memory of kgworld generation: small, large, and a world with >= 1M facts.

Each case runs in a fresh subprocess (so peak RSS is its own), generating the world and
writing it to a temporary folder, and is compared with its target:

    large < 1 s;  >= 1M facts < 60 s and < 4 GiB

The 1M-fact world keeps every fact in the graph and the train/paraphrase splits; it samples
10,000 two-hop and 10,000 retrieval questions (all of them would be 1.7M and 50M statements)
and skips KGFunc, whose size does not depend on the graph.

"generate+write s" is wall time; "CPU s" is the process's own CPU time, which is what the wall
time would be on an idle machine (report both when the machine is shared).

Run: uv run python tools/bench/kgworld_scale.py [--skip-1m]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

CASES: dict[str, tuple[dict[str, object], float, float]] = {
    "small": ({"preset": "small"}, 1.0, 4.0),
    "large": ({"preset": "large"}, 1.0, 4.0),
    # 7 domains -> 21 pairs; 47,620 entities per domain -> 1,000,020 facts.
    "1M facts": (
        {
            "preset": "large",
            "kgfact": {
                "entities_per_domain": 47620,
                "twohop_limit": 10000,
                "retrieval_limit": 10000,
            },
            "kgfunc": {"enabled": False},
        },
        60.0,
        4.0,
    ),
}

CHILD = r"""
import json, resource, sys, tempfile, time
import kgworld
overrides = json.loads(sys.argv[1])
start, cpu_start = time.perf_counter(), time.process_time()
world = kgworld.generate(kgworld.resolve_config(overrides))
generated = time.perf_counter()
with tempfile.TemporaryDirectory() as tmp:
    world.write(tmp + "/w")
end, cpu_end = time.perf_counter(), time.process_time()
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"facts": len(world.kg.facts), "records": sum(world.counts().values()),
                  "generate_s": generated - start, "total_s": end - start, "cpu_s": cpu_end - cpu_start,
                  "peak_gib": peak_kib / 2**20}))
"""


def run_case(overrides: dict) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(overrides)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-1m", action="store_true", help="Only small and large.")
    args = parser.parse_args()
    print(f"tmp dir: {tempfile.gettempdir()}")
    header = "| world | facts | records | generate s | generate+write s | CPU s | peak GiB | target | ok |"
    print(header)
    print("|---|---:|---:|---:|---:|---:|---:|---|---|")
    failed = False
    for name, (overrides, max_s, max_gib) in CASES.items():
        if args.skip_1m and name == "1M facts":
            continue
        r = run_case(overrides)
        ok = r["total_s"] < max_s and r["peak_gib"] < max_gib
        failed |= not ok
        print(
            f"| {name} | {r['facts']:,} | {r['records']:,} | {r['generate_s']:.2f} | "
            f"{r['total_s']:.2f} | {r['cpu_s']:.2f} | {r['peak_gib']:.2f} | < {max_s:g} s, < {max_gib:g} GiB | "
            f"{'yes' if ok else 'NO'} |"
        )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
