"""forgetbench: learning and forgetting evaluation."""

__version__ = "0.1.0"
