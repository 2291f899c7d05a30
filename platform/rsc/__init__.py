"""ReinforceStrategyCreator: bars to a trained, evaluated, registered and served RL trading policy."""

import os
import sys

# Ray 2.60 clusters require token authentication. Ray reads this setting when it is imported, so it is
# set here, before any module of the package imports ray; the token itself comes from RAY_AUTH_TOKEN,
# RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token (which the local head generates when it is missing:
# rsc.cluster.local.ensure_auth_token).
if "RAY_AUTH_MODE" not in os.environ:
    os.environ["RAY_AUTH_MODE"] = "token"
    if "ray" in sys.modules:  # imported first (a notebook): refresh its config as ray.init itself does
        from ray._private.authentication.authentication_token_setup import _enable_token_auth

        _enable_token_auth()
