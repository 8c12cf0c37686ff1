"""``python -m ming_testdata``: the command line of :mod:`ming_testdata.cli`."""

from .cli import main

raise SystemExit(main())
