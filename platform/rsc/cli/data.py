"""``rsc data ingest | validate | inspect | features | split | versions | gc``: the data steps one at a
time, and the stored dataset versions.

``ingest``, ``features`` and ``split`` run the same stage functions as the pipeline, on the run root of
the settings (``<storage.root>/<run.name>/``). ``validate`` checks files without writing anything and
exits non-zero when any check fails; ``inspect`` says what the loader would do with a file (columns,
timestamp format, zone, bar size, rows) without writing anything. ``versions`` lists a dataset's
versions with what references them; ``gc`` removes the ones nothing references.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from rsc.cli import SettingsLoader, add_settings_arguments
from rsc.storage.layout import RunLayout

T = TypeVar("T")
EXIT_DATA_ERROR = 1


@contextmanager
def progress_bars(console: Console) -> Iterator[Callable[..., Iterable[Any]]]:
    """A ``track`` callable (see :mod:`rsc.data.progress`) drawing one rich bar per loop."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:

        def track(items: Iterable[T], description: str, total: int | None = None) -> Iterable[T]:
            yield from progress.track(items, total=total, description=description)

        yield track


def _file_source(path: str, cfg: Any) -> Any:
    """The file source ``validate`` and ``inspect`` read ``path`` with: the data settings' formats."""
    from rsc.data.sources import FileSource, file_format
    from rsc.storage import Storage

    return FileSource(path, Storage.from_settings(cfg.storage), _format_of(path), file_format(cfg.data))


def _format_of(path: str) -> str:
    """``parquet`` for a .parquet path, else ``csv`` (a folder or template of either reads both)."""
    return "parquet" if path.rstrip("/").endswith(".parquet") else "csv"


def _overrides(args: argparse.Namespace) -> list[str]:
    """``--path`` and ``--symbols`` as ``key=value`` overrides (the format follows the extension)."""
    extra = []
    if getattr(args, "path", None):
        source = _format_of(args.path)
        extra += [f"data.source={source}", f"data.path={args.path}"]
    if getattr(args, "symbols", None):
        extra.append("data.symbols=[" + ", ".join(repr(s) for s in args.symbols) + "]")
    return extra


def cmd_ingest(args: argparse.Namespace, load: SettingsLoader, console: Console) -> int:
    from rsc.stages import ingest

    args.config = [*args.config, *_overrides(args)]
    cfg = load(args)
    with progress_bars(console) as track:
        result = ingest.run(cfg, track)
    console.print(f"bars: {result.symbols} symbols, {result.rows:,} rows -> {result.bars_uri}")
    console.print(f"sha256 {result.sha256}")
    return 0


def cmd_features(args: argparse.Namespace, load: SettingsLoader, console: Console) -> int:
    from rsc.stages import features

    cfg = load(args)
    with progress_bars(console) as track:
        result = features.run(cfg, RunLayout(cfg.run_root).bars, track)
    console.print(
        f"features: {result.rows:,} rows x {len(result.columns)} {result.columns} -> {result.features_uri}"
    )
    console.print(f"sha256 {result.sha256}")
    return 0


def cmd_split(args: argparse.Namespace, load: SettingsLoader, console: Console) -> int:
    from rsc.stages import split

    cfg = load(args)
    result = split.run(cfg, RunLayout(cfg.run_root).features)
    console.print(f"split: {result.rows} -> {result.split_uri}; scaler {result.scaler_uri}")
    console.print(f"walk-forward: {result.folds} folds -> {result.folds_uri}")
    return 0


def cmd_validate(args: argparse.Namespace, load: SettingsLoader, console: Console) -> int:
    from rsc.data.validate import check_bars

    cfg = load(args)
    policy = cfg.data.validation.model_copy(update={check: "repair" for check in args.repair})
    table = Table(title=f"validation of {args.path}")
    for column in ("symbol", "rows", "kept", "check", "finding"):
        table.add_column(column, justify="right" if column in ("rows", "kept") else "left")
    failed = warned = 0
    source = _file_source(args.path, cfg)
    with progress_bars(console) as track:
        for raw in track(source.fetch(args.symbols or ["*"]), "validate", len(args.symbols or []) or None):
            _, report = check_bars(raw.frame, raw.origin, raw.symbol, policy)
            failed += not report.ok
            if not report.findings:
                table.add_row(raw.symbol, str(report.rows_in), str(report.rows_out), "", "[green]ok[/]")
            for finding in report.findings:
                status = (
                    "[yellow]repaired[/]"
                    if finding.repaired
                    else "[magenta]warning[/]"
                    if finding.warning
                    else "[red]FAIL[/]"
                )
                warned += finding.warning
                table.add_row(
                    raw.symbol,
                    str(report.rows_in),
                    str(report.rows_out),
                    finding.check,
                    f"{status} {finding}",
                )
    console.print(table)
    console.print(f"{failed} symbol(s) failed" if failed else "[green]all bars valid[/]")
    if warned:
        console.print(f"{warned} data-quality warning(s) (data.validation.quality=warn; fail or off)")
    return EXIT_DATA_ERROR if failed else 0


def cmd_inspect(args: argparse.Namespace, load: SettingsLoader, console: Console) -> int:
    from rsc.data.validate import check_bars
    from rsc.registry.lineage import bar_frequency

    cfg = load(args)
    source = _file_source(args.path, cfg)
    shown: set[str] = set()
    for raw in source.fetch(args.symbols or ["*"]):
        if raw.origin not in shown:
            shown.add(raw.origin)
            reading = source.readings[raw.origin]
            console.print(f"[bold]{raw.origin}[/]", highlight=False)
            mapped = ", ".join(f"{column} -> {canon}" for canon, column in reading.columns.items())
            console.print(f"  columns     {mapped}", highlight=False)
            console.print(f"  timestamps  {reading.timestamps}", highlight=False)
            for note in reading.notes:
                console.print(f"  note        {note}", highlight=False)
        bars, report = check_bars(raw.frame, raw.origin, raw.symbol, cfg.data.validation)
        if bars is None or bars.empty:
            verdict = "; ".join(str(f) for f in report.failures) or "no bars"
            console.print(f"  {raw.symbol:<10}  {report.rows_in:,} rows: [red]{verdict}[/]", highlight=False)
            continue
        stamps = bars["timestamp"].to_numpy()
        size = bar_frequency(stamps) if len(stamps) > 1 else "?"
        status = "valid" if report.ok else f"{len(report.failures)} failed check(s)"
        console.print(
            f"  {raw.symbol:<10}  {report.rows_out:,} rows, {str(stamps[0])[:19]} .. {str(stamps[-1])[:19]}, "
            f"{size} bars, {status}, {len(report.warnings)} data-quality warning(s)",
            highlight=False,
        )
    console.print("nothing written")
    return 0


def cmd_versions(args: argparse.Namespace, load: SettingsLoader, console: Console) -> int:
    from rsc.launch.datasets import all_referrers, dataset_names, list_versions
    from rsc.storage import Storage

    # `rsc data versions NAME [config ...]`: a word that is neither a YAML file nor key=value is a name
    wanted = [c for c in args.config if "=" not in c and not c.endswith((".yaml", ".yml"))]
    args.config = [c for c in args.config if c not in wanted]
    cfg = load(args)
    storage = Storage.from_settings(cfg.storage)
    names = wanted or dataset_names(storage, cfg.storage.root)
    referrers = all_referrers(storage, cfg.storage.root, cfg.tracking_uri)
    for name in names:
        table = Table(title=f"dataset {name} ({cfg.storage.root}/datasets/{name})")
        for column in ("version", "older hash", "rows", "MiB", "written (UTC)", "referenced by"):
            table.add_column(column, justify="right" if column in ("rows", "MiB") else "left")
        infos = list_versions(storage, cfg.storage.root, name, referrers)
        for info in infos:
            table.add_row(
                info.version[:16],
                info.listing_sha256[:16],
                f"{info.rows:,}",
                f"{info.size_bytes / 2**20:.2f}",
                time.strftime("%Y-%m-%d %H:%M", time.gmtime(info.written_at)),
                "; ".join(info.referrers) or "[yellow]nothing[/]",
            )
        console.print(table if infos else f"dataset {name}: no versions")
    if not names:
        console.print(f"no datasets under {cfg.storage.root}/datasets")
    return 0


def cmd_gc(args: argparse.Namespace, load: SettingsLoader, console: Console) -> int:
    from rsc.launch.datasets import collect_garbage
    from rsc.storage import Storage

    cfg = load(args)
    storage = Storage.from_settings(cfg.storage)
    removed = collect_garbage(storage, cfg.storage.root, cfg.tracking_uri, args.grace_days, args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for info in removed:
        console.print(f"{verb} {info.dataset} version {info.version[:16]} ({info.rows:,} rows)")
    console.print(f"{verb} {len(removed)} unreferenced version(s) older than {args.grace_days:g} day(s)")
    return 0


def register(commands: argparse._SubParsersAction, load: SettingsLoader) -> None:
    """Add ``rsc data ...``; ``load`` turns the parsed config arguments into Settings."""
    from rsc.config.settings import ValidationSettings

    data = commands.add_parser("data", help="ingest, validate, compute features and split market data")
    steps = data.add_subparsers(dest="data_command", required=True)

    def step(name: str, help_: str, handler, positional_config: bool = True) -> argparse.ArgumentParser:
        parser = steps.add_parser(name, help=help_)
        if positional_config:
            add_settings_arguments(parser)
        else:
            parser.add_argument(
                "-c",
                "--config",
                action="append",
                default=[],
                help="YAML file or key=value override (repeatable)",
            )
            parser.add_argument("--env", default="local", help="environment overlay under configs/")
        parser.set_defaults(func=lambda args: _guarded(handler, args, load))
        return parser

    ingest = step("ingest", "load and validate bars, write the bars dataset", cmd_ingest)
    ingest.add_argument("--path", help="CSV/Parquet file, folder or {symbol} template (file:// or s3://)")
    ingest.add_argument("--symbols", nargs="+", help="symbols to ingest ('*' = all the files hold)")
    step("features", "compute the configured indicators on the run's bars", cmd_features)
    step("split", "train/validation/test split and walk-forward folds", cmd_split)
    validate = step("validate", "check bar files, print a report (exit 1 on failures)", cmd_validate, False)
    validate.add_argument("path", help="CSV/Parquet file, folder or {symbol} template (file:// or s3://)")
    validate.add_argument("--symbols", nargs="+", help="symbols to check (default: all)")
    inspect = step(
        "inspect", "say how a file would load (columns, dates, zone, bar size)", cmd_inspect, False
    )
    inspect.add_argument("path", help="CSV/Parquet file, folder or {symbol} template (file:// or s3://)")
    inspect.add_argument("--symbols", nargs="+", help="symbols to show (default: all)")
    step(
        "versions",
        "list a stored dataset's versions and what references them: rsc data versions [NAME] [config ...]",
        cmd_versions,
    )
    gc = step("gc", "remove dataset versions no run or registered model references", cmd_gc)
    gc.add_argument("--grace-days", type=float, default=7.0, help="keep younger versions (default 7)")
    gc.add_argument("--dry-run", action="store_true", help="list what would go, remove nothing")
    validate.add_argument(
        "--repair",
        nargs="+",
        default=[],
        choices=ValidationSettings.repairable(),
        help="checks to repair instead of fail (overrides data.validation)",
    )


def _guarded(handler, args: argparse.Namespace, load: SettingsLoader) -> int:
    """Data problems are one line on stderr and exit 1, not a traceback."""
    from rsc.data.sources import SourceError
    from rsc.data.validate import DataValidationError

    console = Console(stderr=False)
    try:
        return handler(args, load, console)
    except (DataValidationError, SourceError, FileNotFoundError, KeyError, ValueError) as error:
        from rsc.config import ConfigError

        if isinstance(error, ConfigError):
            raise
        print(f"rsc: data error: {error}", file=sys.stderr)
        return EXIT_DATA_ERROR
