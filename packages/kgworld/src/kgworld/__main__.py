"""python -m kgworld: the same command line as the kgworld console script."""

from kgworld.cli import main

if __name__ == "__main__":
    main()
