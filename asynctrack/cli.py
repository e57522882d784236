"""``asynctrack`` on the command line (the ``asynctrack`` script and ``python -m asynctrack``).

click is an optional extra (``asynctrack[cli]``): the library never imports this module, and
the script says how to install click when it is missing.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    try:
        import click  # noqa: F401
    except ImportError:
        print("asynctrack's command line needs click: pip install 'asynctrack[cli]'", file=sys.stderr)
        return 2
    from ._cli_commands import cli

    try:
        status = cli.main(args=argv, prog_name="asynctrack", standalone_mode=False)
    except SystemExit as exc:  # click's own exits (--help)
        return int(exc.code or 0)
    except Exception as exc:  # noqa: BLE001 - click's usage errors and ours, as one line each
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            return exc.exit_code
        if isinstance(exc, click.exceptions.Abort):
            return 1
        print(f"asynctrack: {exc}", file=sys.stderr)
        return 1
    return status if isinstance(status, int) else 0  # a command returns its exit status


if __name__ == "__main__":
    sys.exit(main())
