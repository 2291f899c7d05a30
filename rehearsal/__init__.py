"""``make rehearsal``: the cluster's parts played by containers of the real image on one machine.

The pieces a rehearsal needs that tests use too (what the chart renders, Kubernetes' ``$(VAR)``
expansion) live here; ``rehearsal.run`` puts them together.
"""
