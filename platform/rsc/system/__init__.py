"""L0: the machine a process runs on: ports, child processes and the ends of their logs.

No other ``rsc`` package is imported here, so every layer (the cluster launchers, Serve, the CLI) can
report a failed child or a held port the same way.
"""
