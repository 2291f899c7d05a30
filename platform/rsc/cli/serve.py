"""``rsc serve``: the policy endpoint for ``models:/<lineage>@<serve.alias>`` on this machine.

Without ``ray.address`` Ray starts in this process and the endpoint lives until Ctrl-C; with it, the
app is deployed to that cluster and outlives the command.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading

from rsc.cli import SettingsLoader, add_settings_arguments


def cmd_serve(args: argparse.Namespace, load: SettingsLoader) -> int:
    import ray
    from ray import serve

    from rsc.registry.tracking import resolve_alias, use_registry
    from rsc.serve.deploy import deploy

    cfg = load(args)
    use_registry(cfg.tracking_uri)
    if resolve_alias(cfg.model_name, cfg.serve.alias) is None:
        print(
            f"rsc: nothing to serve: no version of {cfg.model_name} at {cfg.tracking_uri} has the "
            f"alias {cfg.serve.alias!r} (run the pipeline, or `rsc registry promote VERSION`)",
            file=sys.stderr,
        )
        return 2
    try:
        url = deploy(cfg.serve, cfg.ray.address, cfg.tracking_uri, cfg.model_name, cfg.monitor)
    except KeyboardInterrupt:  # Ctrl-C while the replicas start: leave nothing running behind
        if cfg.ray.address is None and ray.is_initialized():
            serve.shutdown()
            ray.shutdown()
            print("stopped before the endpoint was up")
        else:
            print(f"interrupted; the application {cfg.serve.app_name!r} may still be starting on the cluster")
        return 130
    print(f"serving {cfg.model_name}@{cfg.serve.alias} at {url}/v1/act (OpenAPI: {url}/openapi.json)")
    if cfg.ray.address is not None:
        return 0
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("Ctrl-C stops it", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    serve.shutdown()
    ray.shutdown()
    print("stopped")
    return 0


def register(commands: argparse._SubParsersAction, load: SettingsLoader) -> None:
    parser = commands.add_parser("serve", help="serve the registered champion over HTTP (Ray Serve)")
    add_settings_arguments(parser)
    parser.set_defaults(func=lambda args: cmd_serve(args, load))
