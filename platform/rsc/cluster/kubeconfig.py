"""Credentials from the user's kube config, for clients of services behind the cluster's auth (the
Kubeflow Pipelines API). With the kuberay launcher, the only users of the ``kubernetes`` client live in
this package."""

from __future__ import annotations

import os

from kubernetes import client, config


def kube_config_token() -> str | None:
    """The bearer token of the kube config's current user (exec plugins included), if there is one."""
    configuration = client.Configuration()
    try:
        config.load_kube_config(
            config_file=os.environ.get("KUBECONFIG") or None, client_configuration=configuration
        )
    except (config.ConfigException, OSError):
        return None
    header = configuration.api_key.get("authorization") or configuration.api_key.get("BearerToken")
    return header.removeprefix("Bearer ").strip() if header else None
