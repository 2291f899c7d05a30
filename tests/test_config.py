from pathlib import Path

import pytest

from rsc.config import ConfigError, load_settings
from rsc.config.loader import parse_override


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_overlay_and_overrides_apply_in_order(tmp_path):
    base = write(tmp_path / "base.yaml", "env:\n  window: 30\n  commission_bps: 5\n")
    overlay = write(tmp_path / "local.yaml", "env:\n  window: 20\n")
    settings = load_settings([base, overlay], ["env.commission_bps=1.5", "data.symbols=[SPX, GOOG]"])
    assert settings.env.window == 20
    assert settings.env.commission_bps == 1.5
    assert settings.data.symbols == ("SPX", "GOOG")


def test_unknown_key_names_key_and_file(tmp_path):
    overlay = write(tmp_path / "local.yaml", "env:\n  windw: 20\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'env.windw' in .*local.yaml"):
        load_settings([overlay])


def test_unknown_section_names_known_sections(tmp_path):
    with pytest.raises(ConfigError, match=r"'trainer'.*known here: .*train"):
        load_settings([write(tmp_path / "a.yaml", "trainer: {}\n")])


def test_wrong_type_names_key_and_source(tmp_path):
    base = write(tmp_path / "base.yaml", "env:\n  window: 30\n")
    with pytest.raises(ConfigError, match=r"'env.window' in the command line.*integer"):
        load_settings([base], ["env.window=many"])
    with pytest.raises(ConfigError, match=r"'env.window' in .*bad.yaml: .*greater than"):
        load_settings([write(tmp_path / "bad.yaml", "env:\n  window: -3\n")])


def test_dates_must_increase():
    with pytest.raises(ConfigError, match="dates must increase"):
        load_settings([], ["split.train_end=2019-01-01"])


def test_relative_file_root_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert (
        load_settings([], ["storage.root=file://./artifacts"]).storage.root == f"file://{tmp_path}/artifacts"
    )
    with pytest.raises(ConfigError, match=r"storage\.root"):
        load_settings([], ["storage.root=gs://bucket"])


def test_settings_round_trip_through_json():
    settings = load_settings([], ["env.window=12"])
    assert type(settings).model_validate_json(settings.model_dump_json()) == settings


@pytest.mark.parametrize("text", ["novalue", "=3"])
def test_malformed_override(text):
    with pytest.raises(ConfigError, match="key=value"):
        parse_override(text)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_settings([tmp_path / "nope.yaml"])
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings([write(tmp_path / "x.yaml", "env: [unclosed\n")])
    with pytest.raises(ConfigError, match="mapping"):
        load_settings([write(tmp_path / "y.yaml", "- a\n- b\n")])
