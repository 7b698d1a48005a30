"""`python -m storey`: the storey command line (see `storey.cli`)."""

from storey.cli import run

raise SystemExit(run())
