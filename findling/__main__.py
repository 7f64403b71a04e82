"""``python -m findling``: the same as the ``findling`` command."""
from findling.cli.main import main

raise SystemExit(main())
