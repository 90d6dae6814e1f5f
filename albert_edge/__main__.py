"""``python -m albert_edge``: the ``albert-edge`` command (albert_edge.cli.main)."""

import sys

from albert_edge.cli import main

sys.exit(main())
