"""``python -m tfwrap``: the admin CLI."""

from tfwrap.cli import main

raise SystemExit(main())
