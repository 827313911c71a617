"""mixsd-base: the plumbing every MixSD package shares (standard library only).

* config loading: :func:`load_config`, :func:`build_config`, :func:`parse_overrides`,
  :func:`read_config_file` (YAML with line numbers, ``extends:``, did-you-mean); fields in one
  line with their checks: :func:`option`, :func:`check_fields`;
* errors: :class:`UserError` (names file, line and field) and its :class:`ConfigError`,
  :class:`DataError`;
* files: atomic writes, JSON Lines with line-numbered errors, sha256, package versions;
* :class:`Registry`: one lookup and did-you-mean for every kind of named thing;
* :func:`lazy_exports`: package attributes imported on first use;
* :func:`run_cli` / :func:`config_command`: one error policy and one way to build options.
"""

from mixsd_base._cli import (
    DEBUG_ENV,
    config_command,
    list_fields,
    report_user_error,
    run_cli,
    scalar_fields,
)
from mixsd_base._config import (
    ConfigSource,
    as_dict,
    build_config,
    config_help,
    field_help,
    load_config,
    merge,
    nest,
    parse_overrides,
    read_config_file,
)
from mixsd_base._errors import ConfigError, DataError, UserError, where
from mixsd_base._fields import check_fields, option
from mixsd_base._files import (
    atomic_path,
    atomic_write,
    check_output,
    dump_jsonl_line,
    file_sha256,
    iter_jsonl,
    package_versions,
    read_json,
    read_jsonl,
    read_text,
    text_sha256,
    write_json,
    write_jsonl,
    write_text,
)
from mixsd_base._lazy import lazy_exports, lazy_table
from mixsd_base._registry import Registry, UnknownNameError, suggest

__version__ = "0.1.0"

__all__ = [
    "DEBUG_ENV",
    "ConfigError",
    "ConfigSource",
    "DataError",
    "Registry",
    "UnknownNameError",
    "UserError",
    "as_dict",
    "atomic_path",
    "atomic_write",
    "build_config",
    "check_fields",
    "check_output",
    "config_command",
    "config_help",
    "dump_jsonl_line",
    "field_help",
    "file_sha256",
    "iter_jsonl",
    "lazy_exports",
    "lazy_table",
    "list_fields",
    "load_config",
    "merge",
    "nest",
    "option",
    "package_versions",
    "parse_overrides",
    "read_config_file",
    "read_json",
    "read_jsonl",
    "read_text",
    "report_user_error",
    "run_cli",
    "scalar_fields",
    "suggest",
    "text_sha256",
    "where",
    "write_json",
    "write_jsonl",
    "write_text",
]
