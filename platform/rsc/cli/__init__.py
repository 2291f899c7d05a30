"""L4: the ``rsc`` command."""
