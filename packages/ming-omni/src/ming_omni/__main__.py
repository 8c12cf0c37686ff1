"""``python -m ming_omni`` runs the CLI."""

import sys

from .cli import main

sys.exit(main())
