"""L3: paper trading: bar feeds, the simulated broker through ``rsc.core``, the ledger, risk limits."""
