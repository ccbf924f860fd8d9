"""``uptimed`` / ``python -m uptimed``: flags -> Settings -> logging -> lock -> the app, until
SIGTERM. The process-level steps (and their one-line failures, exit code 2) are in process.py.
``uptimed export`` and ``uptimed import FILE`` are commands of their own (transfer.py)."""

from __future__ import annotations

import sys

from uptimed import process, reloads, transfer
from uptimed.api import server
from uptimed.app import create_app


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in transfer.COMMANDS:
        return transfer.main(args)
    reloads.ignore_sighup()  # until the loop handles it
    try:
        prepared = process.prepare(argv)
    except process.StartError as e:
        return process.refuse(e)
    settings = prepared.settings
    app = create_app(
        settings, freeze_gc=True, on_open=prepared.announce, declaration=prepared.declaration
    )
    try:
        server.run(app, settings, loop=process.event_loop())
    except Exception as e:  # the database fails at open, the port is taken, ...
        return process.failed(e)
    return 0


if __name__ == "__main__":
    sys.exit(main())
