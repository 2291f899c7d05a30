"""L2: the only package that imports ``ray.rllib`` and ``ray.tune``."""
