"""The ``certify`` command, runnable from a checkout as ``python cli.py MODEL --region BOX [options]``.

The command itself lives in :mod:`certify.cli` (installed as the ``certify`` console script); this file keeps the
entry point at the top of the repository without installing a top-level module named ``cli``.
"""

from certify.cli import main

if __name__ == "__main__":
    main()
