"""``python -m benchcal``: the ``benchcal`` command without a console script on PATH."""

from benchcal.app.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
