"""mixsd-train: SFT, MixSD, MixSD-KL, OPSD and OPSD-NLL trainers."""

__version__ = "0.1.0"
