"""`python -m soundsearch` runs the CLI."""

from soundsearch.cli import app

app()
