from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import kgworld
from kgworld import KGWorldError

GEN = (
    "import sys, kgworld;"
    "kgworld.generate(kgworld.resolve_config(overrides={'preset': sys.argv[2], 'seed': 5}))"
    ".write(sys.argv[1])"
)


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _payloads(world) -> dict[str, bytes]:
    return {rel: b"".join(chunks) for rel, chunks in world.files()}


@pytest.mark.slow
def test_byte_identical_across_processes_and_hash_seeds(tmp_path):
    digests = []
    for hash_seed in ("0", "12345"):
        out = tmp_path / f"w{hash_seed}"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        subprocess.run([sys.executable, "-c", GEN, str(out), "large"], check=True, env=env)
        digests.append(_tree_digest(out))
    assert digests[0] == digests[1]
    assert len(digests[0]) == 1 + 1 + 4 + 3 + 4  # manifest, graph, kgfact/*, kgfunc/*, edit/*


# sha256 of the small preset's (seed 42) {file: sha256} map: pins every byte the generator
# writes (names, relations, edges, templates, KGFunc draws), with the paper's KGFact forms (the
# defaults) and with the CPU configs' one-sentence instruction and statement targets. A change
# that alters worlds on purpose updates them and says so in its commit message.
SMALL_PRESET_FILES_DIGEST = {
    "paper": "cfe1768c8de5ce12f3ca316f94ee87c692449abdcbc0bb80cbfe036a459b4b0a",
    "cpu": "584c1fec74aa61183dfb76e8400b50f0ccff9822d11dbb447134498645f9a59d",
}
# The same over every file but kgfact/retrieval.jsonl, CPU forms: the bytes of the worlds written
# before the paper forms and the separate retrieval KB existed (the graph and every other split).
SMALL_CPU_DIGEST_WITHOUT_RETRIEVAL = (
    "bf84b090b76a1ecc61ad871181440b9cd8cf1bf8aa291bdf81003a039f9963e4"
)
CPU_FORMS = {"instruction": "one-sentence", "target": "statement"}


def _files_digest(hashes: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(hashes, sort_keys=True).encode()).hexdigest()


@pytest.mark.parametrize("forms", ["paper", "cpu"])
def test_small_preset_bytes_are_unchanged(forms):
    kgfact = CPU_FORMS if forms == "cpu" else {}
    world = kgworld.generate(
        kgworld.resolve_config(overrides={"preset": "small", "kgfact": kgfact})
    )
    hashes = {rel: hashlib.sha256(b"".join(chunks)).hexdigest() for rel, chunks in world.files()}
    assert _files_digest(hashes) == SMALL_PRESET_FILES_DIGEST[forms]
    if forms == "cpu":
        del hashes["kgfact/retrieval.jsonl"]
        assert _files_digest(hashes) == SMALL_CPU_DIGEST_WITHOUT_RETRIEVAL


def test_same_seed_same_world_other_seed_other_world(small_world):
    config = small_world.config
    again = kgworld.generate(config)
    assert _payloads(again) == _payloads(small_world)
    other = kgworld.generate(kgworld.resolve_config(overrides={"preset": "small", "seed": 8}))
    assert (
        dict(other.files())["kgfact/train.jsonl"] != dict(small_world.files())["kgfact/train.jsonl"]
    )


@pytest.mark.parametrize(("preset", "facts"), [("small", 100), ("large", 525)])
def test_sizes_match_the_paper(preset, facts):
    world = kgworld.generate(kgworld.resolve_config(overrides={"preset": preset}))
    counts = world.counts()
    assert world.graph.number_of_edges() == facts
    assert (
        counts["kgfact/train"] == counts["kgfact/paraphrase"] == counts["kgfact/retrieval"] == facts
    )
    assert counts["kgfunc/train"] == 1600
    assert counts["kgfunc/test"] == 175
    assert counts["kgfunc/unseen"] == 500
    assert kgworld.check_world(world) == []


def test_write_then_load_round_trips(small_world, small_world_dir):
    loaded = kgworld.load(small_world_dir)
    assert loaded.config == small_world.config
    assert loaded.splits == small_world.splits
    assert loaded.kg == small_world.kg
    assert sorted(loaded.graph.edges(data=True)) == sorted(small_world.graph.edges(data=True))
    assert dict(loaded.graph.nodes(data="domain")) == small_world.kg.domain_of
    manifest = json.loads((small_world_dir / "manifest.json").read_text())
    assert manifest["version"] == kgworld.__version__
    assert manifest["counts"]["edges"] == 100
    for rel, digest in manifest["files"].items():
        assert hashlib.sha256((small_world_dir / rel).read_bytes()).hexdigest() == digest


def test_refuses_non_empty_output_and_overwrites_atomically(tmp_path, small_world):
    out = tmp_path / "w"
    out.mkdir()
    (out / "keep.txt").write_text("user data")
    with pytest.raises(KGWorldError, match="not empty"):
        small_world.write(out)
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    small_world.write(out, overwrite=True)
    assert not (out / "keep.txt").exists() and (out / "manifest.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w"]  # no temp folders left behind


def test_interrupted_write_leaves_nothing_that_looks_complete(tmp_path, small_world, monkeypatch):
    out = tmp_path / "w"

    def boom():
        files = type(small_world).files(small_world)
        yield next(files)
        yield next(files)
        raise KeyboardInterrupt

    monkeypatch.setattr(small_world, "files", boom)
    with pytest.raises(KeyboardInterrupt):
        small_world.write(out)
    assert list(tmp_path.iterdir()) == []


def test_load_detects_tampering_and_bad_lines(tmp_path, small_world):
    out = small_world.write(tmp_path / "w")
    train = out / "kgfact" / "train.jsonl"
    train.write_text(train.read_text().replace("\n", "\nnot json\n", 1))
    with pytest.raises(KGWorldError, match=r"train\.jsonl: sha256 differs"):
        kgworld.load(out)
    with pytest.raises(KGWorldError, match=r"train\.jsonl:2: invalid JSON"):
        kgworld.load(out, verify_hashes=False)
    with pytest.raises(KGWorldError, match=r"manifest\.json: not found"):
        kgworld.load(tmp_path)


def test_datasets_round_trip(small_world_dir, small_world):
    datasets = pytest.importorskip("datasets")
    for split in ("kgfact/train", "kgfact/retrieval", "kgfunc/test"):
        ds = datasets.load_dataset(
            "json", data_files=str(small_world_dir / f"{split}.jsonl"), split="train"
        )
        records = small_world.records(split)
        assert ds.num_rows == len(records)
        assert ds.column_names == ["id", "prompt", "target", "answer", "context", "split", "meta"]
        assert ds[0]["prompt"] == records[0]["prompt"] and ds[-1]["answer"] == records[-1]["answer"]


def test_streamed_files_equal_plain_json_dumps(small_world):
    from kgworld._world import _graph_chunks, _jsonl_chunks

    expected = json.dumps(small_world.kg.node_link(), sort_keys=True) + "\n"
    for per_chunk in (1, 7, 10_000):  # chunk boundaries inside and beyond the arrays
        assert b"".join(_graph_chunks(small_world.kg, per_chunk)).decode() == expected
    records = small_world.records("kgfact/twohop")
    lines = "".join(json.dumps(r) + "\n" for r in records)
    assert b"".join(_jsonl_chunks(records, per_chunk=3)).decode() == lines
