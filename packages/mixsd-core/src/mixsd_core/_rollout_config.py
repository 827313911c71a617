"""Configuration of the rollout stage (``mixsd rollout``), TRL style: one dataclass, help on
every field, validation in ``__post_init__``. It loads like every config of the project, through
``mixsd_base.load_config`` (YAML file with line numbers, ``--set``, unknown keys rejected with a
did-you-mean). Fields marked ``pipeline`` are a stage's inputs and outputs, which ``mixsd run``
fills itself."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from mixsd_base import ConfigError, UserError, build_config, check_fields, option
from mixsd_core._model_spec import DTYPE_WORDS, MODEL_HELP
from mixsd_core._prompts import EXPERT_TEMPLATES, TASK_TYPES
from mixsd_core._rollout_policy import (
    DEFAULT_DELTA,
    DEFAULT_KAPPA,
    DEFAULT_TAU,
    MIXING_KNOBS,
    MIXINGS,
    Mixing,
)

__all__ = ["AUTO_VERIFIERS", "BACKENDS", "RolloutConfig", "RolloutError"]

# The authors' rules: KGFact's last \boxed{} equals the answer exactly; KGFunc's is a number.
AUTO_VERIFIERS = {"kgfact": "boxed-exact", "kgfunc": "integer"}
BACKENDS = ("hf", "vllm")
TASKS = ("auto", *TASK_TYPES)  # auto: by id prefix / meta
# The adaptive-mixing fields: left out of the fingerprint while all are at their defaults, so a
# paper (bernoulli) rollout keeps the fingerprint, and the bytes, it had before they existed.
MIXING_FIELDS = ("mixing", "tau", "kappa", "delta", "repair", "trace")
_NOT_SETTINGS = (
    "overwrite",
    "tensor_parallel_size",
    "gpu_memory_utilization",
    "data_parallel_size",
)
_KNOB_POLICY = {knob: policy for policy, knob in MIXING_KNOBS.items()}


class RolloutError(UserError):
    """A user error of the rollout stage (e.g. output from another run): printed as one line."""


def _verifier_names() -> tuple[str, ...]:
    import kgworld

    return tuple(kgworld.VERIFIERS)


@dataclass
class RolloutConfig:
    """Configuration of ``mixsd rollout``. Its ``settings()`` fingerprint the output."""

    model: str = option("default", MODEL_HELP, pipeline=True)
    data: str = option(
        "",
        "Input JSONL of records (id, prompt, target, answer, ...).",
        required=True,
        pipeline=True,
    )
    out: str = option(
        "",
        "Output JSONL; the manifest goes to OUT-stem.manifest.json.",
        required=True,
        pipeline=True,
    )
    alpha: float = option(
        0.5, "Probability of taking the naive token, in [0, 1].", interval="[0, 1]"
    )
    seed: int = option(0, "Seed of the masks (with example id and attempt).")
    batch_size: int = option(8, "Examples decoded together.", min=1)
    chunk_batches: int = option(
        8,
        "Batches per resumable chunk: a chunk's failed rows from every batch are redrawn "
        "together, in full batches (1 = each batch retries alone).",
        min=1,
    )
    max_new_tokens: int = option(256, "Longest target, in tokens.", min=1)
    max_retries: int = option(10, "Redraws after a failed first attempt; then drop.", min=0)
    parallel_redraws: bool = option(
        True,
        "Fill a retry round's spare batch rows with the failed examples' next redraws "
        "(each redraw's mask is fixed by seed, id and draw; the first that passes is kept): "
        "fewer rounds, the same targets where batched decoding is exact (fp32); in bf16 a "
        "near-tie may break another way. Not with repair.",
    )
    backend: str = option(
        "hf",
        # No square brackets: the CLI's rich help would read "[vllm]" as markup.
        "Decoding backend: 'hf' (transformers, CPU/GPU) or 'vllm' (needs the vllm extra of "
        "mixsd-core; greedy only, same tokens as 'hf').",
        choices=BACKENDS,
    )
    verifier: str = option(
        "auto",
        "'auto' (by task type: kgfact boxed-exact, the authors' exact match of the last "
        "box; kgfunc integer) or a kgworld verifier name, e.g. boxed-or-final-sentence for "
        "small models that rarely box.",
        choices=lambda: ("auto", *_verifier_names()),  # read when checked: imports kgworld
    )
    no_verify: bool = option(False, "Keep every first attempt, unverified.")
    overwrite: bool = option(False, "Replace output written with another config.")
    task: str = option(
        "auto", "Task type: 'auto' (id prefix / meta), 'kgfact', 'kgfunc'.", choices=TASKS
    )
    prompt_style: str = option(
        "clear", "Expert wording: 'clear' or 'paper'.", choices=sorted(EXPERT_TEMPLATES)
    )
    temperature: float = option(0.0, "0 = greedy (the method); > 0 samples.", min=0)
    top_p: float = option(1.0, "Nucleus mass when sampling.", interval="(0, 1]")
    limit: int | None = option(None, "Only the first LIMIT records (None = all).", min=0)
    device: str | None = option(
        None, "Torch device (None = cuda if available, else cpu); hf backend only."
    )
    dtype: str | None = option(
        None,
        "auto, fp32, bf16 or fp16 (None = auto: fp32 on CPU, bf16 on GPU).",
        choices=("auto", *sorted(DTYPE_WORDS)),
    )
    tensor_parallel_size: int = option(
        1,
        "vllm backend: GPUs one engine shards the model over (vLLM's tensor_parallel_size; "
        "GPUs from CUDA_VISIBLE_DEVICES). 1 on the hf backend.",
        min=1,
    )
    data_parallel_size: int = option(
        1,
        "Engines decoding at once, each in its own process on its own tensor_parallel_size "
        "GPUs (vLLM's offline data parallelism: replicas over shares of the prompts), chunk k "
        "on engine k mod N; the output is byte-identical to one engine's. On CPU every engine "
        "shares the cores.",
        min=1,
    )
    gpu_memory_utilization: float | None = option(
        None,
        "vllm backend: share of each GPU's memory vLLM may take (None = vLLM's default, 0.9).",
        interval="(0, 1]",
    )
    mixing: str = option(
        "bernoulli",
        "Whose token a disagreement position takes: 'bernoulli' (the paper: the mask bit), "
        "'gate' (mask bit and p_E(n) >= tau p_E(e)), 'exchange' (lpE(e) - lpE(n) <= kappa "
        "(lpN(n) - lpN(e))), 'guard' (naive unless the context lifts the expert token by delta, "
        "the expert writes the answer, or the naive token ends the sentence before the answer); "
        "greedy only.",
        choices=MIXINGS,
    )
    tau: float | None = option(
        None,
        f"gate: least p_E(n) / p_E(e) for the naive token (None = {DEFAULT_TAU}; 0 = bernoulli).",
        interval="[0, 1]",
    )
    kappa: float | None = option(
        None,
        f"exchange: nats of expert cost one nat of naive gain is worth (None = {DEFAULT_KAPPA}).",
        min=0,
    )
    delta: float | None = option(
        None,
        f"guard: context lift (nats) that keeps the expert token (None = {DEFAULT_DELTA}).",
    )
    answer_guard: bool = option(
        False,
        "Add guard's answer terms to mixing bernoulli, gate or exchange: the expert writes "
        "the answer, and the naive token may not end a sentence or the target before the "
        "verifier passes the text so far.",
    )
    repair: int = option(
        0,
        "On a verifier failure, re-decode with the naive choice that cost the expert most "
        "(before the failure point) forced to the expert, up to REPAIR flips per mask draw "
        "(0 = off; each repair is one of the max_retries attempts).",
        min=0,
    )
    trace: bool = option(
        False,
        "Store each position's side and signals in the records and decoder passes in the "
        "manifest (always on when mixing is not bernoulli or repair > 0).",
    )

    def __post_init__(self) -> None:
        check_fields(self)
        for knob, policy in _KNOB_POLICY.items():
            if getattr(self, knob) is not None and self.mixing != policy:
                raise ConfigError(f"only mixing '{policy}' reads it", field=knob)
        if self.answer_guard and self.mixing == "guard":
            raise ConfigError("guard has the answer terms already", field="answer_guard")
        if self.traced and self.temperature != 0:
            adaptive = ("mixing", self.mixing != "bernoulli"), ("answer_guard", self.answer_guard)
            name = "repair" if self.repair else next((f for f, on in adaptive if on), "trace")
            raise ConfigError("needs greedy decoding (temperature 0)", field=name)
        if self.repair and self.no_verify:
            raise ConfigError(
                "repairs verifier failures: cannot be used with no_verify", field="repair"
            )
        if self.backend != "vllm":
            if self.tensor_parallel_size != 1:
                raise ConfigError(
                    "only backend 'vllm' shards a model", field="tensor_parallel_size"
                )
            if self.gpu_memory_utilization is not None:
                raise ConfigError("only backend 'vllm' reads it", field="gpu_memory_utilization")
        if self.backend == "vllm":
            # Sampling could not reproduce the HF backend's per-row random streams.
            if self.temperature != 0:
                raise ConfigError(
                    "must be 0 with backend 'vllm' (greedy only)", field="temperature"
                )
            # vLLM's platform comes from its install; pick GPUs with CUDA_VISIBLE_DEVICES.
            if self.device is not None:
                raise ConfigError(
                    "must be unset with backend 'vllm' (use CUDA_VISIBLE_DEVICES)", field="device"
                )

    @property
    def traced(self) -> bool:
        """Whether the records carry the per-position trace (and the manifest its summary)."""
        return self.mixing != "bernoulli" or self.answer_guard or self.repair > 0 or self.trace

    @property
    def mixing_policy(self) -> Mixing:
        """The policy with its knobs (unset knobs take their defaults)."""
        return Mixing(
            self.mixing,
            DEFAULT_TAU if self.tau is None else self.tau,
            DEFAULT_KAPPA if self.kappa is None else self.kappa,
            DEFAULT_DELTA if self.delta is None else self.delta,
            self.answer_guard,
        )

    def settings(self) -> dict[str, Any]:
        """What makes this config's output what it is: every field but ``overwrite`` and the
        engine's sharding and memory options (they change where the tokens are computed, not
        which); ``parallel_redraws`` only when on (outputs written before it existed were
        decoded one redraw per round, which is off: they keep their fingerprint), likewise
        ``answer_guard``; the adaptive-mixing fields only when one differs from its default (a
        bernoulli rollout's settings are what they were before those fields existed)."""
        values = {k: v for k, v in asdict(self).items() if k not in _NOT_SETTINGS}
        for name in ("parallel_redraws", "answer_guard"):
            if not values[name]:
                del values[name]
        defaults = {f: _FIELD_DEFAULTS[f] for f in MIXING_FIELDS}
        if all(values[f] == defaults[f] for f in MIXING_FIELDS):
            for name in MIXING_FIELDS:
                del values[name]
        return values

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> RolloutConfig:
        """Build from a mapping (e.g. a run config's section), checked like a config file."""
        return build_config(cls, values)

    @property
    def manifest_path(self) -> Path:
        out = Path(self.out)
        return out.with_name(f"{out.stem}.manifest.json")

    @property
    def partial_path(self) -> Path:
        return Path(self.out).with_name(Path(self.out).name + ".partial")


_FIELD_DEFAULTS = {f.name: f.default for f in fields(RolloutConfig)}
