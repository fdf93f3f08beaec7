"""`python -m gradcalc` and the `gradcalc` script.

Ctrl-C while the command line is still loading (importing click takes a few tens of
milliseconds) ends like Ctrl-C during a command: one line and status 130, not a traceback.
"""

import sys


def run() -> None:
    import gc

    # A command is a short-lived process that loads many modules: the cyclic collector would
    # rescan everything loaded so far at each full collection while they load, and all of it
    # once more at exit, where the operating system takes the memory back anyway. Collecting
    # rarely (every 50,000 new objects, not 700) and freezing what is left at exit saves about
    # 15 ms a command (benchmarks/bench_startup.py); a long run is still collected.
    gc.set_threshold(50_000, 20, 10)
    try:
        from gradcalc.threads import default_to_one

        default_to_one()  # before numpy loads: its BLAS reads the variables once
        from gradcalc.cli import main

        main()
    except KeyboardInterrupt:
        sys.stderr.write("gradcalc: interrupted; no output file was written\n")
        sys.exit(130)
    finally:
        gc.freeze()  # the process ends: no collection of what it leaves


if __name__ == "__main__":
    run()
