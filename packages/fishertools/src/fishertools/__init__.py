"""fishertools: diagonal Fisher diagnostics of where fine-tuning moves the weights.

    result = compute_fisher("path/to/base", "general.jsonl", FisherConfig(samples=64))
    result.save("fisher/base.safetensors")
    report = compare_checkpoints("fisher/base.safetensors", "path/to/base", ["runs/a/checkpoint-60"],
                                 out="fisher/report.json")

The command line is ``fishertools.cli.app`` (mounted as ``mixsd fisher``).
"""

from fishertools._config import CompareConfig, FisherConfig, FisherError, load_config
from fishertools._forgetting import load_forgetting
from fishertools._stats import pearson, rankdata, spearman

# Names backed by torch load on first use, so importing the package (and `mixsd --help`)
# stays fast.
_LAZY = {
    "fishertools._compare": (
        "alignment",
        "compare_checkpoints",
        "displacement_sums",
        "layer_key",
        "mean_response_nll",
        "module_key",
    ),
    "fishertools._data": ("EncodedSample", "encode_records", "read_records"),
    "fishertools._fisher": (
        "FisherResult",
        "compute_fisher",
        "fisher_loop",
        "fisher_vmap",
        "load_fisher",
        "response_nll",
        "save_fisher",
    ),
    "fishertools._models": ("load_model", "select_parameters"),
}
_LAZY_NAMES = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name: str) -> object:
    module = _LAZY_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'fishertools' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__version__ = "0.1.0"

__all__ = [
    "CompareConfig",
    "EncodedSample",
    "FisherConfig",
    "FisherError",
    "FisherResult",
    "__version__",
    "alignment",
    "compare_checkpoints",
    "compute_fisher",
    "displacement_sums",
    "encode_records",
    "fisher_loop",
    "fisher_vmap",
    "layer_key",
    "load_config",
    "load_fisher",
    "load_forgetting",
    "load_model",
    "mean_response_nll",
    "module_key",
    "pearson",
    "rankdata",
    "read_records",
    "response_nll",
    "save_fisher",
    "select_parameters",
    "spearman",
]
