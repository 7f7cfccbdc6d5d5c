"""The `childreg` command line: typer commands, each a few lines over a client function."""
