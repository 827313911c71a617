"""``python -m fishertools``: the command line without a console script."""

from fishertools.cli import main

main()
