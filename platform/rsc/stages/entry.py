"""What every pipeline step does first: logging on, settings parsed from the JSON it was handed."""

from __future__ import annotations

import logging

from rsc.config import Settings


def settings_from_json(settings_json: str) -> Settings:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )
    return Settings.model_validate_json(settings_json)
