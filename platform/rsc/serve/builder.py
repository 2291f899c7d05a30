"""The application builder a Ray Serve config names (``import_path: rsc.serve.builder:build``).

A RayService's ``serveConfigV2`` cannot call Python, so the chart passes the model to serve as
``args``; Ray Serve validates them against :class:`PolicyAppArgs` and calls :func:`build`. Replica
counts and actor resources stay in the config's ``deployments`` section, where Serve applies them.
"""

# No `from __future__ import annotations`: Ray Serve reads build()'s annotation to validate the args.
from pydantic import BaseModel, ConfigDict, Field
from ray.serve import Application

from rsc.config.settings import MonitorSettings, ServeSettings
from rsc.registry.tracking import CHAMPION
from rsc.serve.deploy import policy_app


class PolicyAppArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tracking_uri: str = Field(description="MLflow tracking URI of the registry.")
    model_name: str = Field(description="Registered model: the lineage to serve (e.g. rsc-demo-spx-1d).")
    alias: str = Field(CHAMPION, description="Alias of the version to serve (followed as it moves).")
    serve: ServeSettings = Field(
        ServeSettings(), description="Batching, limits and alias polling (the `serve` settings section)."
    )
    monitor: MonitorSettings = Field(
        MonitorSettings(), description="DogStatsD metrics (the `monitor` settings section)."
    )


def build(args: PolicyAppArgs) -> Application:
    """The policy server bound to the registered model's alias (loaded when a replica starts)."""
    settings = args.serve.model_copy(update={"alias": args.alias})
    return policy_app(settings, args.tracking_uri, args.model_name, args.monitor, replicas_from_config=True)
