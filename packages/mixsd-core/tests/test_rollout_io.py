"""The rollout stage: output records, retries and drops, resume, determinism, bad inputs.

The retry loop alone (no model) is tested in test_retry.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mixsd_base import DataError
from mixsd_core import RolloutConfig, RolloutError, render_prompts, run_rollout

STEPS = 12


@pytest.fixture
def data(tmp_path: Path, make_records, write_jsonl) -> Path:
    return write_jsonl(tmp_path / "train.jsonl", make_records())


def _config(data: Path, out: Path, **overrides: Any) -> RolloutConfig:
    values = dict(data=str(data), out=str(out), alpha=0.5, batch_size=3, max_new_tokens=STEPS)
    return RolloutConfig(**{**values, **overrides})


def _run(tiny_lm, config: RolloutConfig, **kwargs: Any) -> dict[str, Any]:
    model, tok = tiny_lm
    return run_rollout(config, model=model, tokenizer=tok, progress=False, **kwargs)


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_no_verify_writes_every_example(tiny_lm, data, tmp_path, make_records) -> None:
    _, tok = tiny_lm
    out = tmp_path / "rollouts" / "mix.jsonl"
    manifest = _run(tiny_lm, _config(data, out, no_verify=True))
    rows = _lines(out)
    assert [r["id"] for r in rows] == [r["id"] for r in make_records()]
    for row, source in zip(rows, make_records(), strict=True):
        assert {k: row[k] for k in ("prompt", "answer", "context", "split", "meta")} == {
            k: source[k] for k in ("prompt", "answer", "context", "split", "meta")
        }
        assert (row["naive_prompt"], row["expert_prompt"]) == render_prompts(tok, source)
        assert len(row["mask"]) == len(row["target_ids"]) <= STEPS
        assert set(row["mask"]) <= {0, 1}
        ended = row["finish_reason"] == "eos"
        assert ended == (row["target_ids"][-1] == tok.eos_token_id)
        body = row["target_ids"][:-1] if ended else row["target_ids"]
        assert row["target"] == tok.decode(body)
        assert (row["alpha"], row["seed"], row["attempt"], row["verified"]) == (0.5, 0, 0, None)
    assert manifest == json.loads((tmp_path / "rollouts" / "mix.manifest.json").read_text())
    assert manifest["counts"]["kept"] == len(rows) and manifest["drop_rate"] == 0.0
    assert manifest["verifier"] == "none"
    assert 0.2 < manifest["naive_token_share"] < 0.8
    assert not list(out.parent.glob("*.partial")) and not list(out.parent.glob("*.tmp"))


def test_same_config_same_bytes(tiny_lm, data, tmp_path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    _run(tiny_lm, _config(data, a, no_verify=True))
    _run(tiny_lm, _config(data, b, no_verify=True))
    assert a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize("chunk_batches", [1, 2])
def test_resume_after_interruption(tiny_lm, data, tmp_path, chunk_batches) -> None:
    whole, cut = tmp_path / "whole.jsonl", tmp_path / "cut.jsonl"
    _run(tiny_lm, _config(data, whole, no_verify=True, chunk_batches=chunk_batches))

    seen: list[str] = []

    def crash_after_four(entry: dict[str, Any]) -> None:
        seen.append(entry["record"]["id"])
        if len(seen) == 4:
            raise KeyboardInterrupt

    config = _config(data, cut, no_verify=True, chunk_batches=chunk_batches)
    with pytest.raises(KeyboardInterrupt):
        _run(tiny_lm, config, on_record=crash_after_four)
    assert not cut.exists() and (tmp_path / "cut.jsonl.partial").exists()
    resumed: list[str] = []
    _run(tiny_lm, config, on_record=lambda e: resumed.append(e["index"]))
    # Chunks of 3 (or 6) examples: the crash came after the chunk holding index 4 was saved.
    assert resumed == [6, 7]
    assert cut.read_bytes() == whole.read_bytes()
    manifests = [
        json.loads(p.with_name(p.stem + ".manifest.json").read_text()) for p in (whole, cut)
    ]
    for m in manifests:
        del m["fingerprint"]["config"]["out"]
    assert manifests[0] == manifests[1]


def test_retries_redraw_the_mask_then_pass(tiny_lm, data, tmp_path) -> None:
    calls: dict[str, int] = {}

    def third_time_lucky(reply: str, answer: str) -> bool:
        calls[answer] = calls.get(answer, 0) + 1
        return calls[answer] == 3

    out = tmp_path / "retry.jsonl"
    manifest = _run(tiny_lm, _config(data, out, max_retries=5), verifier=third_time_lucky)
    rows = _lines(out)
    assert all(r["attempt"] == 2 and r["verified"] is True for r in rows) and len(rows) == 8
    assert manifest["attempts_histogram"] == {"2": 8}
    assert manifest["verifier"] == {
        "kgfact": "custom:third_time_lucky",
        "kgfunc": "custom:third_time_lucky",
    }
    # Each attempt draws a fresh mask: the redrawn targets differ from first attempts.
    first = _lines(_run_first(tiny_lm, data, tmp_path))
    assert sum(a["target_ids"] != b["target_ids"] for a, b in zip(rows, first, strict=True)) >= 4


def test_an_alias_verifies_a_target(tiny_lm, tmp_path, make_records, write_jsonl) -> None:
    # A record's aliases (meta.answer_aliases) count in the rollouts as in the evaluations.
    records = make_records()[:2]
    records[0]["meta"] = {**(records[0].get("meta") or {}), "answer_aliases": ["ALIAS"]}
    data = write_jsonl(tmp_path / "aliased.jsonl", records)

    def alias_only(reply: str, answer: str) -> bool:
        return answer == "ALIAS"

    out = tmp_path / "aliased-out.jsonl"
    manifest = _run(tiny_lm, _config(data, out, max_retries=1), verifier=alias_only)
    assert [r["id"] for r in _lines(out)] == [records[0]["id"]]
    assert manifest["counts"]["kept"] == 1


def _run_first(tiny_lm, data: Path, tmp_path: Path) -> Path:
    out = tmp_path / "first.jsonl"
    _run(tiny_lm, _config(data, out, no_verify=True))
    return out


def test_examples_that_never_pass_are_dropped(tiny_lm, data, tmp_path) -> None:
    out = tmp_path / "drop.jsonl"
    # The tiny random model never states "Ans0"...: kgworld's verifiers reject every attempt.
    manifest = _run(tiny_lm, _config(data, out, max_retries=1, max_new_tokens=4))
    assert out.read_text() == ""
    assert manifest["counts"] == {"examples": 8, "kept": 0, "dropped": 8, "tokens": 0}
    assert manifest["drop_rate"] == 1.0
    assert manifest["verifier"] == {"kgfact": "boxed-exact", "kgfunc": "integer"}
    # Each drop says how its last attempt ended, in input order.
    ids = [json.loads(line)["id"] for line in data.read_text().splitlines()]
    assert [d["id"] for d in manifest["dropped"]] == ids
    assert {d["attempts"] for d in manifest["dropped"]} == {2}
    assert {d["finish_reason"] for d in manifest["dropped"]} <= {"eos", "length"}
    assert all(isinstance(d["ending"], str) for d in manifest["dropped"])


@pytest.fixture
def batch_sizes(monkeypatch) -> list[int]:
    """The row count of every mixed_rollout call (one decoded batch each), in call order."""
    import mixsd_core._rollout as rollout

    sizes: list[int] = []
    real = rollout.mixed_rollout

    def counting(*args: Any, **kwargs: Any) -> Any:
        sizes.append(len(args[2]))
        return real(*args, **kwargs)

    monkeypatch.setattr(rollout, "mixed_rollout", counting)
    return sizes


@pytest.mark.parametrize(
    ("alpha", "temperature", "calls"), [(0.0, 0.0, 1), (1.0, 0.0, 1), (0.5, 0.0, 3)]
)
def test_greedy_pure_modes_do_not_retry(
    tiny_lm, data, tmp_path, batch_sizes, alpha, temperature, calls
) -> None:
    # With alpha 0 or 1 every redraw is the same mask, so greedy retries cannot change anything.
    config = _config(
        data,
        tmp_path / "o.jsonl",
        alpha=alpha,
        temperature=temperature,
        max_retries=2,
        max_new_tokens=4,
        batch_size=8,
    )
    manifest = _run(tiny_lm, config)
    assert manifest["counts"]["dropped"] == 8
    assert len(batch_sizes) == calls


@pytest.mark.parametrize(
    ("chunk_batches", "sizes"), [(1, [3, 2, 3, 2, 2, 1]), (4, [3, 3, 2, 3, 2])]
)
def test_failed_rows_of_a_chunk_retry_in_full_batches(
    tiny_lm, data, tmp_path, batch_sizes, chunk_batches, sizes
) -> None:
    # Examples 0, 3, 6 pass at once, the rest on their second attempt.
    records = _lines(data)
    answers_first = {records[i]["answer"] for i in (0, 3, 6)}
    tries: dict[str, int] = {}

    def verifier(reply: str, answer: str) -> bool:
        tries[answer] = tries.get(answer, 0) + 1
        return tries[answer] == 2 or answer in answers_first

    out = tmp_path / f"pool{chunk_batches}.jsonl"
    one_redraw = dict(max_retries=3, parallel_redraws=False)  # one redraw per round
    manifest = _run(
        tiny_lm, _config(data, out, chunk_batches=chunk_batches, **one_redraw), verifier=verifier
    )
    assert batch_sizes == sizes
    assert [r["id"] for r in _lines(out)] == [r["id"] for r in records]
    assert manifest["attempts_histogram"] == {"0": 3, "1": 5}
    if chunk_batches == 4:  # same records as retrying batch by batch
        alone = tmp_path / "pool1.jsonl"
        tries.clear()
        _run(tiny_lm, _config(data, alone, chunk_batches=1, **one_redraw), verifier=verifier)
        assert _lines(alone) == _lines(out)


def test_parallel_redraws_write_the_same_bytes_in_fewer_rounds(tiny_lm, data, tmp_path) -> None:
    # Example k passes on its attempt k mod 4 (a deterministic rule of the reply's answer and
    # how often it was asked), so outcomes spread over several rounds.
    records = _lines(data)
    need = {r["answer"]: i % 4 for i, r in enumerate(records)}
    tries: dict[str, int] = {}

    def verifier(reply: str, answer: str) -> bool:
        tries[answer] = tries.get(answer, 0) + 1
        return tries[answer] > need[answer]

    outputs, rounds = {}, {}
    for ahead in (False, True):
        tries.clear()
        out = tmp_path / f"ahead-{ahead}.jsonl"
        counted: list[int] = []
        config = _config(data, out, max_retries=4, parallel_redraws=ahead, chunk_batches=1)
        model = tiny_lm[0]
        forward = model.forward

        def counting(
            *args: Any, _forward: Any = forward, _counted: list[int] = counted, **kwargs: Any
        ) -> Any:
            _counted.append(1)
            return _forward(*args, **kwargs)

        model.forward = counting
        try:
            manifest = _run(tiny_lm, config, verifier=verifier)
        finally:
            model.forward = forward
        outputs[ahead], rounds[ahead] = (out.read_bytes(), manifest), len(counted)
    assert outputs[True][0] == outputs[False][0]  # fp32: batched decoding is exact
    for manifest in (outputs[True][1], outputs[False][1]):
        del manifest["fingerprint"]["config"]["out"], manifest["output_sha256"]
    # On is a setting of its own (in bf16 another batching may break a near-tie another way);
    # off, one redraw per round, leaves the fingerprint as it was before the option existed.
    assert outputs[True][1]["fingerprint"]["config"].pop("parallel_redraws") is True
    assert "parallel_redraws" not in outputs[False][1]["fingerprint"]["config"]
    assert outputs[True][1] == outputs[False][1]
    assert outputs[True][1]["attempts_histogram"] == {"0": 2, "1": 2, "2": 2, "3": 2}
    assert rounds[True] < rounds[False]  # fewer forwards: fewer, fuller batches


def test_finished_output_is_not_redone(tiny_lm, data, tmp_path) -> None:
    out = tmp_path / "done.jsonl"
    first = _run(tiny_lm, _config(data, out, no_verify=True))
    second = run_rollout(_config(data, out, no_verify=True), progress=False)  # no model needed
    assert first == second


def test_a_moved_run_keeps_its_rollouts(tiny_lm, data, tmp_path) -> None:
    """The fingerprint's data hash stands for the data: moved files (a run folder copied to
    another machine) are found finished, and a moved partial file resumes."""
    import shutil

    first = _run(tiny_lm, _config(data, tmp_path / "a" / "done.jsonl", no_verify=True))
    moved = tmp_path / "b"
    shutil.copytree(tmp_path / "a", moved)
    shutil.copy(data, tmp_path / "b" / "train.jsonl")
    again = run_rollout(
        _config(moved / "train.jsonl", moved / "done.jsonl", no_verify=True), progress=False
    )
    assert again == first  # read back, nothing decoded (no model was given)

    def stop(entry: dict[str, Any]) -> None:
        raise KeyboardInterrupt

    options = dict(no_verify=True, chunk_batches=1)  # chunks of 3: the crash leaves 2 to do
    with pytest.raises(KeyboardInterrupt):
        _run(tiny_lm, _config(data, tmp_path / "c" / "p.jsonl", **options), on_record=stop)
    shutil.copytree(tmp_path / "c", tmp_path / "d")
    resumed: list[int] = []
    config = _config(data, tmp_path / "d" / "p.jsonl", **options)
    _run(tiny_lm, config, on_record=lambda e: resumed.append(e["index"]))
    assert resumed == [3, 4, 5, 6, 7]  # the first chunk came from the moved partial file


def test_other_config_without_overwrite_is_refused(tiny_lm, data, tmp_path) -> None:
    out = tmp_path / "x.jsonl"
    _run(tiny_lm, _config(data, out, no_verify=True))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    with pytest.raises(RolloutError, match=r"different run \(alpha, seed\).*--overwrite"):
        _run(tiny_lm, _config(data, out, no_verify=True, alpha=0.3, seed=1))
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before
    _run(tiny_lm, _config(data, out, no_verify=True, alpha=0.3, seed=1, overwrite=True))
    assert all(r["alpha"] == 0.3 for r in _lines(out))


def test_partial_from_other_config_is_refused(tiny_lm, data, tmp_path) -> None:
    out = tmp_path / "p.jsonl"

    def stop(entry: dict[str, Any]) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _run(tiny_lm, _config(data, out, no_verify=True), on_record=stop)
    with pytest.raises(
        RolloutError, match=r"p\.jsonl\.partial is from a different run \(max_new_tokens\)"
    ):
        _run(tiny_lm, _config(data, out, no_verify=True, max_new_tokens=5))


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", r"bad\.jsonl:2: invalid JSON"),
        ('["a list"]', r"bad\.jsonl:2: expected a JSON object"),
        ('{"id": "b", "prompt": "q", "target": "t"}', r"bad\.jsonl:2: field 'answer': missing"),
        ('{"id": "b", "prompt": 3, "target": "t", "answer": "a"}', r":2: field 'prompt': must be"),
        (
            '{"id": "b", "prompt": " ", "target": "t", "answer": "a"}',
            r":2: field 'prompt': must be",
        ),
        (
            '{"id": "b", "prompt": "q", "target": "t", "answer": "a", "context": 1}',
            r":2: field 'context': must be a string or null",
        ),
        (
            '{"id": "a", "prompt": "q", "target": "t", "answer": "a"}',
            r":2: field 'id': 'a' repeats line 1",
        ),
    ],
)
def test_bad_records_name_file_line_and_field(tiny_lm, tmp_path, line, message) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text('{"id": "a", "prompt": "q", "target": "t", "answer": "a"}\n' + line + "\n")
    out = tmp_path / "out.jsonl"
    with pytest.raises(DataError, match=message):
        _run(tiny_lm, _config(data, out))
    assert list(tmp_path.iterdir()) == [data]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"d\.jsonl: data file holds no records"),
        (b"\n  \n", r"d\.jsonl: data file holds no records"),
        (
            b'{"id": "a", "prompt": "q\xff", "target": "t", "answer": "a"}\n',
            r"d\.jsonl:1: not UTF-8",
        ),
    ],
)
def test_empty_or_undecodable_data_is_an_error(tmp_path, content, message) -> None:
    data = tmp_path / "d.jsonl"
    data.write_bytes(content)
    with pytest.raises(DataError, match=message):
        run_rollout(_config(data, tmp_path / "o.jsonl"), progress=False)  # before any model
    assert list(tmp_path.iterdir()) == [data]


def test_missing_data_file_names_its_absolute_path(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match=f"{tmp_path}/nope.jsonl: no such data file"):
        run_rollout(_config(Path("nope.jsonl"), tmp_path / "o.jsonl"), progress=False)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("alpha", 1.5),
        ("alpha", -0.1),
        ("batch_size", 0),
        ("max_retries", -1),
        ("verifier", "fuzzy"),
        ("backend", "tgi"),
        ("top_p", 0.0),
        ("task", "kgmath"),
    ],
)
def test_bad_config_values(data, tmp_path, field, value) -> None:
    with pytest.raises(ValueError, match=field):
        _config(data, tmp_path / "o.jsonl", **{field: value})


def test_from_dict_rejects_unknown_keys(data, tmp_path) -> None:
    with pytest.raises(ValueError, match=r"field 'alpah': unknown key \(did you mean 'alpha'\?\)"):
        RolloutConfig.from_dict({"data": str(data), "out": str(tmp_path / "o.jsonl"), "alpah": 0.1})


# ---------------------------------------------------------------------------- adaptive mixing

# A paper (bernoulli) rollout's record and fingerprint keys, as before adaptive mixing existed.
PAPER_RECORD_KEYS = {
    *("id", "prompt", "target", "answer", "context", "split", "meta", "gold_target"),
    *("target_ids", "mask", "naive_prompt", "expert_prompt", "alpha", "seed", "attempt"),
    *("verified", "finish_reason", "task"),
}
PAPER_CONFIG_KEYS = {
    *("model", "data", "out", "alpha", "seed", "batch_size", "chunk_batches", "max_new_tokens"),
    *("max_retries", "backend", "verifier", "no_verify", "task", "prompt_style", "temperature"),
    *("top_p", "limit", "device", "dtype"),
}
TRACE_KEYS = {"mixing", "sides", "signals", "naive_share"}


def _paper_and(tiny_lm, data, tmp_path, verifier=None, **mixing: Any):
    """The bernoulli rollout and the same rollout under ``mixing``: (records, manifest) each."""
    runs = []
    for name, extra in (("paper", {}), ("mixed", mixing)):
        out = tmp_path / f"{name}.jsonl"
        settings: dict[str, Any] = dict(max_retries=3) if verifier else dict(no_verify=True)
        manifest = _run(tiny_lm, _config(data, out, **settings, **extra), verifier=verifier)
        runs.append((_lines(out), manifest))
    return runs


def _every_third(reply: str, answer: str) -> bool:
    return len(reply) % 3 == 0


def test_paper_rollouts_keep_their_keys(tiny_lm, data, tmp_path) -> None:
    (paper, manifest), (traced, traced_manifest) = _paper_and(
        tiny_lm, data, tmp_path, _every_third, trace=True
    )
    assert {k for r in paper for k in r} == PAPER_RECORD_KEYS
    # The keys of a paper rollout before parallel redraws existed, and the one that names them
    # (one redraw per round leaves the fingerprint as it was: test_parallel_redraws_...).
    assert set(manifest["fingerprint"]["config"]) == PAPER_CONFIG_KEYS | {"parallel_redraws"}
    assert "decoder_passes" not in manifest and "effective_naive_share" not in manifest
    # trace: the same targets, with their trace; its fingerprint names the new fields
    assert [{k: r[k] for k in PAPER_RECORD_KEYS} for r in traced] == paper
    assert all(set(r) == PAPER_RECORD_KEYS | TRACE_KEYS for r in traced)
    assert traced_manifest["fingerprint"]["config"]["trace"] is True
    assert traced_manifest["attempts_histogram"] == manifest["attempts_histogram"]


def test_gate_tau_0_writes_the_paper_targets(tiny_lm, data, tmp_path) -> None:
    (paper, manifest), (gated, gated_manifest) = _paper_and(
        tiny_lm, data, tmp_path, _every_third, mixing="gate", tau=0.0
    )
    assert [{k: r[k] for k in PAPER_RECORD_KEYS} for r in gated] == paper
    assert manifest["attempts_histogram"] != {"0": len(paper)}  # retries happened
    sides = "".join(r["sides"] for r in gated)
    assert gated_manifest["disagreement_positions"] == sum(c != "." for c in sides) > 0
    assert gated_manifest["effective_naive_share"] == sides.count("N") / sum(
        c != "." for c in sides
    )
    dropped = gated_manifest["counts"]["dropped"]
    attempts = sum(r["attempt"] + 1 for r in gated) + dropped * 4
    assert gated_manifest["decoder_passes"] == attempts
    for r in gated:
        assert r["mixing"] == "gate" and len(r["sides"]) == len(r["target_ids"])
        assert [s[0] for s in r["signals"]] == [t for t, c in enumerate(r["sides"]) if c != "."]
        assert all(v == round(v, 2) for s in r["signals"] for v in s[1:])


def test_guard_records_its_decisions(tiny_lm, data, tmp_path) -> None:
    (paper, _), (guarded, manifest) = _paper_and(tiny_lm, data, tmp_path, mixing="guard", delta=0.5)
    assert [r["target_ids"] for r in guarded] != [r["target_ids"] for r in paper]
    assert manifest["fingerprint"]["config"]["mixing"] == "guard"
    for r in guarded:
        taken = [r["mask"][t] for t, c in enumerate(r["sides"]) if c in "NE"]
        assert taken == [int(c == "N") for c in r["sides"] if c in "NE"]
        share = r["naive_share"]
        assert share is None or share == r["sides"].count("N") / (
            len(r["sides"]) - r["sides"].count(".")
        )
        # guard keeps the expert wherever the lift reaches delta
        assert all(r["sides"][s[0]] == "E" for s in r["signals"] if s[3] >= 8.01)


def _reference_row(tiny_lm, record: dict[str, Any], mask: list[int], **policy: Any) -> Any:
    """``reference_mixed_row`` for a written record's prompts under ``mask`` and ``policy``."""
    from mixsd_core import reference_mixed_row, stop_token_ids

    model, tok = tiny_lm
    return reference_mixed_row(
        model,
        tok,
        record["naive_prompt"],
        record["expert_prompt"],
        mask,
        max_new_tokens=STEPS,
        eos_token_ids=stop_token_ids(model, tok),
        **policy,
    )


def test_answer_guard_asks_the_verifier_whether_the_answer_is_stated(
    tiny_lm, data, tmp_path
) -> None:
    """gate + answer guard at alpha 1: each record is the reference decode whose answer check
    is the rollout's verifier on the text so far; records and fingerprint name the guard."""
    from mixsd_core import Mixing, draw_mask, stop_token_ids
    from mixsd_core._rollout_policy import answer_variants, ending_token_ids

    model, tok = tiny_lm
    stops = stop_token_ids(model, tok)
    texts: list[str] = []

    def long_enough(reply: str, answer: str) -> bool:
        texts.append(reply)
        return len(reply) >= 8

    settings = dict(alpha=1.0, mixing="gate", tau=1e-3)
    out = tmp_path / "guarded.jsonl"
    manifest = _run(
        tiny_lm,
        _config(data, out, max_retries=1, answer_guard=True, **settings),
        verifier=long_enough,
    )
    guarded = _lines(out)
    assert manifest["fingerprint"]["config"]["answer_guard"] is True
    assert guarded and all(r["answer_guard"] is True and r["mixing"] == "gate" for r in guarded)
    assert len(texts) > 4 * manifest["decoder_passes"]  # asked along the way, not once a decode

    def text(ids: list[int]) -> str:
        return tok.decode(ids[:-1] if ids and ids[-1] in stops else ids)

    for r in guarded:
        reference = _reference_row(
            tiny_lm,
            r,
            draw_mask(1.0, 0, r["id"], r["attempt"], STEPS),
            mixing=Mixing("gate", tau=1e-3, answer_guard=True),
            answer_ids=answer_variants(tok, r["answer"]),
            ending_ids=ending_token_ids(tok, stops),
            answer_check=lambda ids: long_enough(text(ids), ""),
        )
        assert r["target_ids"] == reference.tokens and r["sides"] == reference.sides
    unguarded = _config(data, tmp_path / "u.jsonl", max_retries=3, **settings)
    assert "answer_guard" not in unguarded.settings()


def test_repair_redecodes_from_the_costliest_flip(tiny_lm, data, tmp_path) -> None:
    from mixsd_core import draw_mask

    calls: dict[str, int] = {}

    def third_time_lucky(reply: str, answer: str) -> bool:
        calls[answer] = calls.get(answer, 0) + 1
        return calls[answer] == 3

    out = tmp_path / "repair.jsonl"
    manifest = _run(tiny_lm, _config(data, out, max_retries=5, repair=2), verifier=third_time_lucky)
    rows = _lines(out)
    assert len(rows) == 8 and all(r["attempt"] == 2 for r in rows)
    repaired = [r for r in rows if r["repairs"]]
    assert len(repaired) >= 4 and any(len(r["repairs"]) == 2 for r in repaired)
    for r in rows:
        # The last flip is re-decoded from the same prefix, so it stays a disagreement; an
        # earlier one may fall where the re-decoded text no longer disagrees (or has ended).
        assert {t for t, c in enumerate(r["sides"]) if c == "R"} <= set(r["repairs"])
        assert not r["repairs"] or r["sides"][r["repairs"][-1]] == "R"
        reference = _reference_row(
            tiny_lm, r, draw_mask(0.5, 0, r["id"], r["draw"], STEPS), forced=set(r["repairs"])
        )
        assert r["target_ids"] == reference.tokens and r["sides"] == reference.sides
    assert manifest["decoder_passes"] == 8 * 3


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"tau": 0.2}, "field 'tau': only mixing 'gate' reads it"),
        ({"mixing": "guard", "kappa": 1.0}, "field 'kappa': only mixing 'exchange' reads it"),
        ({"mixing": "gate", "temperature": 0.7}, "field 'mixing': needs greedy decoding"),
        ({"repair": 1, "temperature": 0.7}, "field 'repair': needs greedy decoding"),
        ({"repair": 1, "no_verify": True}, "field 'repair': repairs verifier failures"),
        ({"mixing": "blind"}, "field 'mixing': must be one of"),
        ({"mixing": "guard", "answer_guard": True}, "field 'answer_guard': guard has"),
        ({"answer_guard": True, "temperature": 0.7}, "field 'answer_guard': needs greedy"),
        ({"mixing": "gate", "tau": 1.5}, r"field 'tau': must be in \[0, 1\]"),
    ],
)
def test_bad_mixing_configs(data, tmp_path, values, message) -> None:
    with pytest.raises(ValueError, match=message):
        _config(data, tmp_path / "o.jsonl", **values)


@pytest.mark.slow
def test_data_parallel_engines_write_one_engines_bytes_and_resume(
    tiny_lm, tiny_model_dir, data, tmp_path
) -> None:
    """Engines (processes) over chunks k mod N: the output and manifest are a single engine's;
    an interrupted run's finished chunks are kept, even when the rerun uses another N."""
    from mixsd_core._rollout_io import rank_partial_path

    options = dict(model=str(tiny_model_dir), chunk_batches=1, no_verify=True)
    one, many = tmp_path / "one.jsonl", tmp_path / "many.jsonl"
    single = run_rollout(_config(data, one, **options), progress=False)
    # An earlier 2-engine run stopped after engine 0 finished its chunks (0 and 2 of 3).
    model, tok = tiny_lm
    config = _config(data, many, data_parallel_size=2, **options)
    run_rollout(config, model=model, tokenizer=tok, progress=False, shard=(0, 2))
    assert [e.get("index") for e in _lines(rank_partial_path(config, 0))[1:]] == [0, 1, 2, 6, 7]
    config = _config(data, many, data_parallel_size=3, **options)  # resumed on 3 engines
    manifest = run_rollout(config, progress=False)
    assert many.read_bytes() == one.read_bytes()
    for m in (single, manifest):
        del m["fingerprint"]["config"]["out"]
    assert manifest == single
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("many")) == [
        "many.jsonl",
        "many.manifest.json",
    ]


@pytest.mark.slow
def test_a_failed_data_parallel_engine_stops_the_run_without_output(data, tmp_path) -> None:
    out = tmp_path / "out.jsonl"
    config = _config(data, out, model=str(tmp_path / "no-model"), data_parallel_size=2)
    with pytest.raises(RolloutError, match=r"engine 0 of 2 exited with code 2 .*rerun to resume"):
        run_rollout(config, progress=False)
    assert not out.exists() and not config.manifest_path.exists()


def test_data_parallel_engines_take_their_own_gpus(monkeypatch) -> None:
    from mixsd_core._rollout_parallel import engine_devices

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6,7")
    assert engine_devices(2, 2) == ["4,5", "6,7"]
    assert engine_devices(4, 1) == ["4", "5", "6", "7"]
    with pytest.raises(RolloutError, match="needs 6 GPUs; 4 visible"):
        engine_devices(3, 2)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert engine_devices(2, 1) is None  # no GPU: every engine on the CPU


def test_data_parallel_takes_no_preloaded_model(tiny_lm, data, tmp_path) -> None:
    config = _config(data, tmp_path / "o.jsonl", data_parallel_size=2)
    with pytest.raises(RolloutError, match="loads the model in each engine process"):
        _run(tiny_lm, config)
