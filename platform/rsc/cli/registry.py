"""``rsc registry list | promote | rollback``: the registered model's versions and its ``champion``.

``promote`` runs the same gate as the register stage on the numbers stored with the version (its test
metrics, buy-and-hold's, its deflated Sharpe) against the current champion; ``--force`` promotes
anyway and records that it was forced. ``rollback`` moves ``champion`` back to the previous champion.
``migrate`` copies the versions of ``rsc-policy`` (the one model every lineage shared before lineages)
into one model per lineage, each with its champion, and renames an experiment an earlier version
created with a direct ``s3://`` location, so that the next run's experiment keeps its artifacts behind
the tracking server's proxy.
A running endpoint follows the alias within ``serve.alias_poll_s`` and announces the switch at ``/v1/model``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import replace

from rich.console import Console
from rich.table import Table

from rsc.cli import SettingsLoader, add_settings_arguments
from rsc.config import Settings

EXIT_REFUSED = 1


def _connect(cfg: Settings) -> str:
    from rsc.registry.tracking import use_registry

    use_registry(cfg.tracking_uri)
    return cfg.model_name


def _version(name: str, target: str) -> int:
    """A version number, or the version an alias names."""
    from rsc.registry.tracking import resolve_alias

    if target.isdigit():
        return int(target)
    version = resolve_alias(name, target)
    if version is None:
        raise LookupError(f"registered model {name!r} has no @{target} version")
    return version


def cmd_list(args: argparse.Namespace, load: SettingsLoader) -> int:
    from rsc.registry.promotion import DSR, champion_history, metric_key
    from rsc.registry.tracking import list_versions

    cfg = load(args)
    name, metric = _connect(cfg), cfg.registry.promotion_metric
    versions = list_versions(name)
    console = Console(width=160)
    if not versions:
        console.print(f"registered model {name!r} has no versions (MLflow at {cfg.tracking_uri})")
        return 0
    table = Table(title=f"{name} (MLflow at {cfg.tracking_uri})")
    for column in ("version", "aliases", "registered", "run", metric, f"buy&hold {metric}", "DSR", "gate"):
        table.add_column(column)

    def number(value: float | None) -> str:
        return "-" if value is None else f"{value:.4f}"

    for v in reversed(versions):
        table.add_row(
            str(v.version),
            ", ".join(sorted(v.aliases)),
            time.strftime("%Y-%m-%d %H:%M", time.localtime(v.created_ms / 1000)),
            v.run_tags.get("mlflow.runName", v.run_id[:8]),
            number(v.metrics.get(metric_key("policy", metric))),
            number(v.metrics.get(metric_key("buy_and_hold", metric))),
            number(v.metrics.get(metric_key("statistics", DSR))),
            v.tags.get("rsc.gate.reason", "-"),
        )
    console.print(table)
    console.print(f"champion history (oldest first): {champion_history(name) or '-'}")
    return 0


def cmd_promote(args: argparse.Namespace, load: SettingsLoader) -> int:
    from rsc.registry.promotion import promote, record_decision, run_gate
    from rsc.registry.tracking import CHAMPION, resolve_alias
    from rsc.stages.champion_window import rescorer_for_version

    cfg = load(args)
    name = _connect(cfg)
    version = _version(name, args.target)
    if resolve_alias(name, CHAMPION) == version:
        raise LookupError(f"{name} version {version} is already the champion")
    decision = run_gate(name, version, cfg.registry, rescorer_for_version(cfg, name, version))
    if args.force and not decision.promote:
        decision = replace(decision, promote=True, reason=f"forced by the operator over: {decision.reason}")
    record_decision(name, version, decision, forced=args.force)
    print(decision.reason)
    if not decision.promote:
        print(f"version {version} stays challenger; --force promotes it anyway", file=sys.stderr)
        return EXIT_REFUSED
    replaced = promote(name, version)
    print(f"{name}: champion is version {version}" + (f" (was {replaced})" if replaced else ""))
    return 0


def cmd_rollback(args: argparse.Namespace, load: SettingsLoader) -> int:
    from rsc.registry.promotion import rollback

    cfg = load(args)
    name = _connect(cfg)
    rolled_back, champion = rollback(name)
    print(f"{name}: champion is version {champion} again (was {rolled_back})")
    return 0


def _run(func: Callable[[argparse.Namespace, SettingsLoader], int], load: SettingsLoader):
    def run(args: argparse.Namespace) -> int:
        from rsc.registry.tracking import REGISTRY_ERRORS

        try:
            return func(args, load)
        except (LookupError, *REGISTRY_ERRORS) as error:  # e.g. no such registered model or version
            print(f"rsc: {error}", file=sys.stderr)
            return 2

    return run


def cmd_migrate(args: argparse.Namespace, load: SettingsLoader) -> int:
    from rsc.registry.lineage import LEGACY_MODEL_NAME, migrate_legacy_model
    from rsc.registry.tracking import migrate_experiment

    cfg = load(args)
    _connect(cfg)  # points MLflow at the registry
    champions = migrate_legacy_model()
    for name, champion in sorted(champions.items()):
        held = f"@champion v{champion}" if champion is not None else "no champion"
        print(f"{LEGACY_MODEL_NAME} -> {name} ({held}); {LEGACY_MODEL_NAME} itself is left as it was")
    renamed = migrate_experiment(cfg.tracking_uri, cfg.registry.experiment)
    if renamed is None:
        print(f"experiment {cfg.registry.experiment!r} needs no migration")
    else:
        print(
            f"renamed experiment {cfg.registry.experiment!r} to {renamed!r}; the next run creates "
            f"{cfg.registry.experiment!r} with its artifacts behind the tracking server's proxy"
        )
    return 0


def register(commands: argparse._SubParsersAction, load: SettingsLoader) -> None:
    registry = commands.add_parser("registry", help="list, promote or roll back registered model versions")
    actions = registry.add_subparsers(dest="action", required=True)
    list_ = actions.add_parser("list", help="versions with aliases, test metrics and gate decisions")
    promote = actions.add_parser("promote", help="gate a version and make it champion if it passes")
    promote.add_argument("target", help="version number or alias (e.g. challenger)")
    promote.add_argument("--force", action="store_true", help="promote even if the gate refuses")
    rollback = actions.add_parser("rollback", help="move champion back to the previous champion")
    migrate = actions.add_parser(
        "migrate",
        help="split rsc-policy into one model per lineage; move an old experiment onto the artifact proxy",
    )
    commands_ = ((list_, cmd_list), (promote, cmd_promote), (rollback, cmd_rollback), (migrate, cmd_migrate))
    for parser, func in commands_:
        add_settings_arguments(parser)
        parser.set_defaults(func=_run(func, load))
