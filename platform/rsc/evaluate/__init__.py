"""L2: deterministic backtests through ``rsc.core``, benchmarks and the HTML report."""
