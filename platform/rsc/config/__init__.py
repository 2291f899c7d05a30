"""L0: typed, frozen settings loaded from YAML plus overrides."""

from rsc.config.loader import ConfigError, load_settings
from rsc.config.settings import Settings

__all__ = ["ConfigError", "Settings", "load_settings"]
