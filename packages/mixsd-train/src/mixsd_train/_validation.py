"""Validation accuracy at every checkpoint, logged to the trainer state: ``val_accuracy`` on the
validation records (the training records by default: training accuracy) and, when the run has
held-out records (``validation_data``), ``heldout_val_accuracy`` on those (the validation curve
of the paper's checkpoint rule), by the same greedy decode and verifier.

``ValidationCallback`` runs in ``on_step_end`` of each step that is about to be saved: the
Trainer's own flow callback sets ``should_save`` before ours runs, and the checkpoint is written
after all callbacks, so the accuracy is already in ``log_history`` when that checkpoint's
``trainer_state.json`` is written.
Greedy decoding (``mixsd_core.greedy_generate``), then the kgworld verifier of each record's
task. Under torchrun / accelerate launch each process decodes its share of the records (every
world-size-th one) and the pass counts are summed over the processes (``all_reduce``), so every
process logs the same accuracy of all the records; under FSDP, where each forward pass is a
collective over the sharded weights, every process decodes all the records in step instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from mixsd_train._select import HELDOUT_KEY, TRAINING_KEY

__all__ = ["ValidationCallback", "checkpoint_accuracy", "greedy_accuracy"]


def _verifier_for(record: Mapping[str, Any], name: str) -> Callable[[str, str], bool]:
    import kgworld
    from mixsd_core import AUTO_VERIFIERS, detect_task

    return kgworld.get_verifier(AUTO_VERIFIERS[detect_task(record)] if name == "auto" else name)


@torch.no_grad()
def greedy_accuracy(
    model: Any,
    tokenizer: Any,
    records: Sequence[Mapping[str, Any]],
    *,
    max_new_tokens: int,
    batch_size: int = 16,
    verifier: str = "auto",
) -> tuple[float, list[str]]:
    """Share of ``records`` whose greedy reply to the naive prompt passes the verifier."""
    passed, replies = _greedy_passes(
        model,
        tokenizer,
        records,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        verifier=verifier,
    )
    return passed / max(len(records), 1), replies


def _greedy_passes(
    model: Any,
    tokenizer: Any,
    records: Sequence[Mapping[str, Any]],
    *,
    max_new_tokens: int,
    batch_size: int,
    verifier: str,
) -> tuple[int, list[str]]:
    """How many of ``records`` pass the verifier, and the greedy replies."""
    from mixsd_core import greedy_generate, render_naive_prompt

    was_training = model.training
    model.eval()
    try:
        prompts = [render_naive_prompt(tokenizer, r) for r in records]
        outputs = greedy_generate(
            model, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size
        )
    finally:
        model.train(was_training)
    replies = [tokenizer.decode(ids, skip_special_tokens=True) for ids in outputs]
    import kgworld

    passed = sum(
        kgworld.verify_record(reply, r, _verifier_for(r, verifier))
        for r, reply in zip(records, replies, strict=True)
    )
    return int(passed), replies


def checkpoint_accuracy(
    checkpoint: str,
    records: Sequence[Mapping[str, Any]],
    *,
    max_new_tokens: int,
    batch_size: int = 16,
    verifier: str = "auto",
) -> float:
    """:func:`greedy_accuracy` of a saved model folder (the learning-rate sweep's validation
    score of each rate's selected checkpoint)."""
    from mixsd_core import load_model

    model, tokenizer = load_model(checkpoint)
    accuracy, _ = greedy_accuracy(
        model,
        tokenizer,
        records,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        verifier=verifier,
    )
    return accuracy


class ValidationCallback(TrainerCallback):
    """Logs ``val_accuracy`` and ``val_n`` on ``records`` and, given ``heldout`` records,
    ``heldout_val_accuracy`` and ``heldout_val_n`` on them, at each checkpoint step."""

    def __init__(
        self,
        tokenizer: Any,
        records: Sequence[Mapping[str, Any]],
        *,
        max_new_tokens: int,
        batch_size: int = 16,
        verifier: str = "auto",
        log: Callable[[dict[str, float]], None] | None = None,
        heldout: Sequence[Mapping[str, Any]] = (),
        split: bool = True,
    ) -> None:
        self.tokenizer, self.records, self.heldout = tokenizer, list(records), list(heldout)
        self.max_new_tokens, self.batch_size, self.verifier = max_new_tokens, batch_size, verifier
        # Trainer.log when given: the value then also reaches tensorboard and the other reporters.
        self.log = log
        # Several processes: each decodes its share of the records (False: all of them, FSDP).
        self.split = split

    def _accuracy(self, model: Any, records: list[Mapping[str, Any]], device: Any) -> float:
        """Accuracy on ``records``, the work shared by the processes of a distributed run."""
        import torch.distributed as dist

        distributed = self.split and dist.is_available() and dist.is_initialized()
        rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
        passed, _ = _greedy_passes(
            model,
            self.tokenizer,
            records[rank::world],
            max_new_tokens=self.max_new_tokens,
            batch_size=self.batch_size,
            verifier=self.verifier,
        )
        if distributed:
            total = torch.tensor([passed], dtype=torch.long, device=device)
            dist.all_reduce(total)  # gloo on CPU, nccl on GPU: the Trainer's own process group
            passed = int(total.item())
        return passed / max(len(records), 1)

    def on_step_end(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        model: Any = None,
        **kwargs: Any,
    ) -> None:
        if not control.should_save:
            return
        metrics = {}
        for key, records in ((TRAINING_KEY, self.records), (HELDOUT_KEY, self.heldout)):
            if not records:
                continue
            metrics[key] = self._accuracy(model, records, args.device)
            metrics[key.replace("_accuracy", "_n")] = float(len(records))
        if not metrics:
            return
        if self.log is not None:
            should_log = control.should_log
            self.log(metrics)  # Trainer.log -> on_log clears should_log: keep this step's loss log
            control.should_log = should_log
        else:
            state.log_history.append({**metrics, "step": state.global_step})
