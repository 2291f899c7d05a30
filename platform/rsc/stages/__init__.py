"""L3: one module per DAG step; each ``run(cfg, ...) -> Result`` reads top to bottom."""
