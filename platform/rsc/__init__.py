"""ReinforceStrategyCreator: bars to a trained, evaluated, registered and served RL trading policy."""

import os

# Ray 2.60 clusters require token authentication. Ray reads this setting when it is imported, so it is
# set here, before any module of the package imports ray; the token itself comes from
# ~/.ray/auth_token (written by `ray start`) or RAY_AUTH_TOKEN.
os.environ.setdefault("RAY_AUTH_MODE", "token")
