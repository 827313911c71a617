"""fishertools: diagonal Fisher diagnostics of where fine-tuning moves the weights.

    result = compute_fisher("path/to/base", "general.jsonl", FisherConfig(samples=64))
    result.save("fisher/base.safetensors")
    report = compare_checkpoints("fisher/base.safetensors", "path/to/base", ["runs/a/checkpoint-60"],
                                 out="fisher/report.json")

The command line is ``fishertools.cli.app`` (mounted as ``mixsd fisher``).
"""

from fishertools._config import CompareConfig, FisherConfig, FisherError
from fishertools._forgetting import DELTA_L_REF, DELTA_NLL, MEASURE_NAMES, load_forgetting
from fishertools._memory import MemoryPlan, memory_plan
from fishertools._stats import pearson, rankdata, spearman
from mixsd_base import lazy_exports, lazy_table

# Names backed by torch load on first use, so importing the package (and `mixsd --help`)
# stays fast.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        **lazy_table(
            "fishertools._compare",
            (
                "alignment",
                "compare_checkpoints",
                "displacement_sums",
                "layer_key",
                "mean_sample_nll",
                "memory_plan",
                "module_key",
            ),
        ),
        **lazy_table("fishertools._data"),  # every name of its __all__
        **lazy_table(
            "fishertools._fisher",
            (
                "FisherResult",
                "compute_fisher",
                "fisher_loop",
                "fisher_vmap",
                "load_fisher",
                "sample_nll",
                "save_fisher",
            ),
        ),
        **lazy_table("fishertools._models", ("load_model", "select_parameters")),
    },
)

__version__ = "0.1.0"

__all__ = [
    "DELTA_L_REF",
    "DELTA_NLL",
    "MEASURE_NAMES",
    "CompareConfig",
    "EncodedSample",
    "FisherConfig",
    "FisherError",
    "FisherResult",
    "MemoryPlan",
    "__version__",
    "alignment",
    "compare_checkpoints",
    "compute_fisher",
    "displacement_sums",
    "encode_records",
    "fisher_loop",
    "fisher_vmap",
    "layer_key",
    "load_fisher",
    "load_forgetting",
    "load_model",
    "mean_sample_nll",
    "memory_plan",
    "module_key",
    "pearson",
    "rankdata",
    "read_records",
    "sample_nll",
    "save_fisher",
    "select_parameters",
    "spearman",
]
