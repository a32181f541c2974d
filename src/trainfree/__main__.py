"""``python -m trainfree`` and the ``trainfree`` command: SIGTERM is made an exception before
the command line's seconds of imports (torch), and a stop during them is one line, exit 130
(Ctrl-C) or 143 (SIGTERM), not an import traceback."""

from __future__ import annotations

import sys


def main() -> None:
    from trainfree.signals import quiet_interrupts

    quiet_interrupts()
    try:
        from trainfree.cli import app
    except KeyboardInterrupt as exc:
        from trainfree.errors import Terminated

        sys.stderr.write(f"stopped by {'SIGTERM' if isinstance(exc, Terminated) else 'Ctrl-C'}\n")
        sys.exit(143 if isinstance(exc, Terminated) else 130)
    app()


if __name__ == "__main__":
    main()
