"""`python -m semsim` entry point."""

from semsim.cli import main

raise SystemExit(main())
