"""L4: the ``rsc`` command.

What every settings-reading subcommand shares: the loader it is handed and its two arguments.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

SettingsLoader = Callable[[argparse.Namespace], Any]  # parsed arguments -> Settings


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    """``config`` (YAML files and key=value overrides) and ``--env`` (the overlay), read by the loader."""
    parser.add_argument(
        "config",
        nargs="*",
        help="YAML files (default configs/base.yaml + configs/<env>.yaml) and key=value overrides",
    )
    parser.add_argument("--env", default="local", help="environment overlay under configs/ (default: local)")
