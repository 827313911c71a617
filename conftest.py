"""Loads the test fixtures every package shares (mixsd_core.pytest_plugin) for the whole repository.

Here rather than as a ``pytest11`` entry point of mixsd-core: an entry point would switch the plugin
on in every pytest run of any environment that installs mixsd-core, users' own projects included.
"""

pytest_plugins = ["mixsd_core.pytest_plugin"]
