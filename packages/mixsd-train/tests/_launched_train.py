"""Run by tests/test_distributed.py under ``accelerate launch``: the ``train`` command once per
job, in the same processes (each launch pays the imports of torch and transformers once per
process, tens of seconds on a CI machine). argv[1]: a JSON list of ``train`` argument lists."""

from __future__ import annotations

import json
import sys

from mixsd_train.cli import app

for arguments in json.loads(sys.argv[1]):
    app(["train", *arguments], standalone_mode=False)
