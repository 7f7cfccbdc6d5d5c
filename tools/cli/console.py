"""The command line's two consoles: results to standard output, messages to standard error.

One pair for every command, so that results a script reads never mix with progress and
advice, and every command prints the same way (no colour guessing, no highlighting of
numbers in personal text). Rich writes to whatever ``sys.stdout``/``sys.stderr`` are at
the moment of printing, so tests that capture them see the output.
"""

from __future__ import annotations

from rich.console import Console

#: Results: tables, JSON, the values a script reads.
out = Console(highlight=False, soft_wrap=True)
#: Messages: progress, warnings, errors and what to do next.
err = Console(stderr=True, highlight=False, soft_wrap=True)
