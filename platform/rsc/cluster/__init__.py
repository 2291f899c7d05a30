"""L3: where Ray work runs: a local head for the run, an existing cluster (Ray Jobs), or KubeRay."""
