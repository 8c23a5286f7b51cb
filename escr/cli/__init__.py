"""The `escr` command line: a thin face over the application layer (entry point: escr.cli.entry;
commands: escr.cli.main)."""
