"""The report: its content, metrics.json, and the rendered page looked at in headless Chromium."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

from rsc.config.settings import EvaluateSettings
from rsc.core.execution import Costs
from rsc.evaluate import benchmarks
from rsc.evaluate.backtest import backtest
from rsc.evaluate.report import render_report
from rsc.evaluate.suite import (
    SECTIONS,
    AssetPrices,
    Evaluation,
    PriceHistory,
    TrialsEvidence,
    evaluate,
    strategy_metrics,
)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--virtual-time-budget=5000",
]
WIDTH = 1280
ALL_FIGURES = ("equity", "drawdown", "positions", "rolling_sharpe", "random", "pbo")


def _evaluation(
    trials: TrialsEvidence | None = None, folds=None, assets: bool = False, n: int = 260
) -> Evaluation:
    rng = np.random.default_rng(0)
    total = n + 300
    close = 100 * np.exp(np.cumsum(rng.normal(0.0004, 0.01, (total, 2)), axis=0))
    open_ = close * np.exp(rng.normal(0, 0.002, (total, 2)))
    stamps = np.busday_offset("2016-01-01", np.arange(total), roll="forward").astype("datetime64[ns]")
    history = PriceHistory(stamps, open_[:, 0], close[:, 0])
    decisions = benchmarks.sma_crossover(history.close, 5, 30, 1.0, -1.0)[-n:]
    policy = backtest(decisions, open_[-n:, 0], close[-n:, 0], Costs(5, 2), 100_000.0, stamps[-n:])
    prices = AssetPrices(("AAA", "BBB"), stamps, open_, close) if assets else None
    settings = EvaluateSettings(random_seeds=50)
    return evaluate(
        policy,
        history,
        "AAA",
        (-1.0, 0.0, 1.0),
        Costs(5, 2),
        100_000.0,
        settings,
        7,
        trials or TrialsEvidence(),
        prices,
        folds,
        title="test report",
    )


@pytest.fixture(scope="module")
def full() -> Evaluation:
    """Every input present: trials for DSR, trial returns for PBO, two assets, folds."""
    returns = np.random.default_rng(1).normal(0.0002, 0.01, (256, 8))
    trials = TrialsEvidence(8, np.array([0.2, 0.5, 1.1, -0.3, 0.8, 0.1, 0.4, 0.9]), returns)
    folds = [{"sharpe": 0.4, "total_return": 0.05}, {"sharpe": -0.1, "total_return": -0.02}]
    return _evaluation(trials, folds, assets=True)


@pytest.fixture(scope="module")
def full_page(full) -> str:
    return render_report(full)


@pytest.fixture(scope="module")
def bare() -> Evaluation:
    """Only what a run without HPO records or folds has."""
    return _evaluation(
        TrialsEvidence(missing={"pbo": "not available for this run: no trial return series"}), n=120
    )


def test_metrics_json_has_every_strategy_metric_and_statistic(full):
    stored = json.loads(json.dumps(full.to_json(), allow_nan=False))  # strict JSON: no NaN or inf
    strategies = strategy_metrics(stored)
    assert set(strategies) == {
        "policy",
        "buy_and_hold",
        "flat",
        "sma_crossover",
        "momentum",
        "random_median",
        "equal_weight",
        "min_variance",
    }
    for key in (
        "total_return",
        "cagr",
        "annual_volatility",
        "sharpe",
        "sortino",
        "calmar",
        "max_drawdown",
        "max_drawdown_duration",
        "win_rate",
        "profit_factor",
        "average_win",
        "average_loss",
        "trades",
        "turnover",
        "exposure",
        "skew",
        "kurtosis",
        "var_95",
        "cvar_95",
        "alpha",
        "beta",
        "information_ratio",
    ):
        assert isinstance(strategies["policy"][key], float), key
    assert set(SECTIONS) <= set(stored)
    statistics = stored["statistics"]
    assert all(0 <= statistics[k] <= 1 for k in ("psr", "dsr", "pbo"))
    assert statistics["n_trials"] == 8 and statistics["pbo_splits"] == 16
    assert stored["conventions"]["periods_per_year"] == 252.0
    assert stored["notes"] == {}
    assert len(stored["folds"]) == 2


def test_report_states_what_is_missing(bare):
    page = render_report(bare)
    stored = bare.to_json()
    assert stored["statistics"]["dsr"] is None and stored["statistics"]["pbo"] is None
    assert "not available for this run: no trial return series" in page
    assert "not available for this run" in stored["notes"]["dsr"]
    assert "No walk-forward folds in this run." in page
    assert set(_figure_data(page)) == set(ALL_FIGURES) - {"pbo"}  # no PBO, no PBO figure
    assert "need at least 2 symbols" in page
    assert stored["statistics"]["psr"] is not None


def test_report_contents(full, full_page):
    page = full_page
    for section in (
        "verdict",
        "statistics",
        "metrics",
        "figures",
        "random",
        "folds",
        "trades",
        "conventions",
    ):
        assert f'<section id="{section}">' in page
    assert page.count('class="figure"') == len(ALL_FIGURES)
    assert "252 bars per year" in page and "5 bps commission" in page
    assert full.verdict in page.replace("&#x27;", "'")
    assert "<td>0.4</td>" in page  # the folds table
    trades = full.backtests["policy"].trades
    assert page.count("<tr>") > len(trades.pnl)  # one row per trade, besides the other tables
    assert "http://" not in page and "https://" not in page  # self-contained


def _figure_data(page: str) -> dict[str, str]:
    return dict(re.findall(r'data-figure="(\w+)"[^>]*src="data:image/png;base64,([^"]+)"', page))


def test_every_figure_is_a_png(full_page):
    found = _figure_data(full_page)
    assert set(found) == set(ALL_FIGURES)
    for name, data in found.items():
        image = Image.open(io.BytesIO(base64.b64decode(data)))
        assert image.format == "PNG" and image.width > 400, name


# -- headless Chromium ---------------------------------------------------------------------------
class _Figures(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: dict[str, dict[str, str]] = {}
        self.body: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        found = dict(attrs)
        if tag == "img" and "figure" in (found.get("class") or "").split():
            self.images[found["data-figure"]] = found
        if tag == "body":
            self.body = found


def _chromium(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def look_at(page: Path, expected: tuple[str, ...], workdir: Path) -> tuple[list[str], Path]:
    """Render ``page`` in headless Chromium; returns the problems with its figures and a screenshot.

    A figure is a problem when it is absent, did not decode (naturalWidth 0), is laid out too small, or
    its region of the screenshot is blank.
    """
    dom = _Figures()
    dom.feed(_chromium(page, workdir / "profile-dom", "--dump-dom", f"--window-size={WIDTH},4000").stdout)
    height = int(dom.body.get("data-height", "4000"))
    shot = workdir / "report.png"
    _chromium(page, workdir / "profile-shot", f"--screenshot={shot}", f"--window-size={WIDTH},{height}")
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    problems = []
    for name in expected:
        image = dom.images.get(name)
        if image is None:
            problems.append(f"{name}: not in the page")
            continue
        if int(image.get("data-natural-width", "0")) == 0:
            problems.append(f"{name}: did not decode")
            continue
        x, y, w, h = (int(v) for v in image["data-rect"].split(","))
        region = pixels[y : y + h, x : x + w]
        if w < 300 or h < 100 or region.size == 0:
            problems.append(f"{name}: laid out at {w}x{h}")
        elif (region < 200).mean() < 0.01 or region.std() < 10:
            problems.append(f"{name}: blank")
    return problems, shot


@pytest.fixture
def needs_chromium() -> str:
    """Chromium is part of the test set-up (`make test` installs it): its absence fails, naming the fix."""
    if CHROMIUM is None:
        pytest.fail("headless Chromium is not installed: run `make chromium` (apt-get install -y chromium)")
    return CHROMIUM


@pytest.mark.usefixtures("needs_chromium")
def test_rendered_report_shows_every_plot(full_page, tmp_path):
    page = tmp_path / "report.html"
    page.write_text(full_page)
    problems, shot = look_at(page, ALL_FIGURES, tmp_path)
    assert problems == []
    assert Image.open(shot).size[0] == WIDTH


def _blank_png() -> str:
    figure = plt.figure(figsize=(9, 3))
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.mark.usefixtures("needs_chromium")
def test_screenshot_check_fails_when_a_plot_is_missing(full_page, tmp_path):
    html = full_page
    data = _figure_data(full_page)
    html = html.replace(data["drawdown"], "iVBORw0KGgoAAAANSUhEUgAAbroken")  # a PNG that does not decode
    html = html.replace(data["random"], _blank_png())  # decodes, but shows nothing
    html = re.sub(r'<figure><img class="figure" id="fig-pbo".*?</figure>', "", html)  # gone
    page = tmp_path / "report.html"
    page.write_text(html)
    problems, _ = look_at(page, ALL_FIGURES, tmp_path)
    assert sorted(p.split(":")[0] for p in problems) == ["drawdown", "pbo", "random"]
    assert "drawdown: did not decode" in problems and "random: blank" in problems


def test_report_lists_the_data_quality_warnings(bare):
    assert "No data-quality warnings" in render_report(bare)
    warned = dataclasses.replace(bare, data_quality=("bars.csv [SP] row 1 (1999-01-05): the open <equals>",))
    page = render_report(warned)
    assert '<section id="data-quality">' in page and "row 1 (1999-01-05): the open &lt;equals&gt;" in page
    assert warned.to_json()["data_quality"] == list(warned.data_quality)


def test_the_report_shows_the_champions_paper_record_beside_its_backtest(bare):
    assert "No champion has a paper-trading record yet" in render_report(bare)
    live = {
        "version": 4, "bars": 60, "sharpe": -1.25, "drawdown": 0.125, "psr": 0.0123, "until": "2026-11-30",
        "backtest_sharpe": 1.5, "backtest_max_drawdown": 0.08, "alert": "PSR 0.012 below 0.05",
    }  # fmt: skip
    page = render_report(bare, live)
    section = page[page.index('<section id="live-record">') :]
    assert "Champion v4, latest 60 paper bars up to 2026-11-30" in section
    assert "PSR 0.012 below 0.05" in section and "-1.25" in section and "1.50" in section
    assert "12.50%" in section and "8.00%" in section
