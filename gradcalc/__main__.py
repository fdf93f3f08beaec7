"""`python -m gradcalc` and the `gradcalc` script.

Ctrl-C while the command line is still loading (importing click takes a few tens of
milliseconds) ends like Ctrl-C during a command: one line and status 130, not a traceback.
"""

import sys


def run() -> None:
    try:
        from gradcalc.threads import default_to_one

        default_to_one()  # before numpy loads: its BLAS reads the variables once
        from gradcalc.cli import main

        main()
    except KeyboardInterrupt:
        sys.stderr.write("gradcalc: interrupted; no output file was written\n")
        sys.exit(130)


if __name__ == "__main__":
    run()
