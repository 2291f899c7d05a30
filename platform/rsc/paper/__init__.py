"""L3: paper trading: bar feeds, decision sources, the simulated broker through ``rsc.core``, the
segment ledger, risk limits and guards, and the trader that ties them together (``service``)."""
