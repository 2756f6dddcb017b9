"""A HiGHS instance that does not print its banner on the process's stdout (which carries certify's table/JSON).

highspy prints the banner from C++ when the first ``Highs()`` of a process is built; Python-level redirection
cannot catch it, so the file descriptor is pointed at /dev/null for that construction only.
"""

from __future__ import annotations

import os
import sys


def new_highs():
    """``highspy.Highs()`` with the banner suppressed and ``output_flag`` off."""
    import highspy

    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError):  # no real stdout (e.g. captured): nothing to protect
        h = highspy.Highs()
    else:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 1)
            h = highspy.Highs()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
            os.close(devnull)
    h.setOptionValue("output_flag", False)
    return h
