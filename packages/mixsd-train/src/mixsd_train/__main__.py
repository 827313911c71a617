"""``python -m mixsd_train train|select ...`` (the umbrella CLI mounts the same app as ``mixsd``)."""

from mixsd_train.cli import main

main()
