"""The `escr` command's entry point: escr is imported with the garbage collector paused.

Importing escr makes several hundred thousand objects that live as long as the process (the
ORM's mappers, pydantic's validators, the command tree); with the collector running, it walked
them again and again while they were being made, about 0.1-0.3 s of every command, page worker
and web start. Afterwards they are frozen, so the collections of a long run skip them too.
"""

from __future__ import annotations

import gc


def main() -> None:
    gc.disable()
    try:
        from escr.cli.main import app
    finally:
        gc.freeze()
        gc.enable()
    app(prog_name="escr")
