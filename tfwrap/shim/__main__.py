"""``python -m tfwrap.shim REAL ARGS...``: the shim's checked path."""

from tfwrap.shim.main import main

raise SystemExit(main())
