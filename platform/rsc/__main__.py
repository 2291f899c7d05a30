"""``python -m rsc`` is the ``rsc`` command."""

from rsc.cli.main import main

raise SystemExit(main())
