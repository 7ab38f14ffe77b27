"""Run one command from a small process and record its time and peak memory.

Usage: python -I -S launch.py RESULT_FILE COMMAND [ARGUMENT ...]

On Linux a child's ru_maxrss counts the resident pages it shared with its
parent at fork (or all of the parent's peak, with vfork), and exec does not
reset it. Measured straight from the benchmark script, every reading would
include that script's own memory. Forked from this bare interpreter, a
reading includes at most this process's few megabytes, which run.py
measures and prints as the floor.

RESULT_FILE receives one line: wall seconds, ru_maxrss in KiB, exit code.
The command inherits this process's environment, working folder and
standard streams. This file imports only built-in modules, so that the
interpreter stays small.
"""

import os
import sys
import time


def main() -> int:
    if len(sys.argv) < 3:
        sys.stderr.write("usage: launch.py RESULT_FILE COMMAND [ARGUMENT ...]\n")
        return 2
    result_file, argv = sys.argv[1], sys.argv[2:]

    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(argv[0], argv)
        except OSError as error:
            os.write(2, f"launch.py: cannot run {argv[0]}: {error}\n".encode())
        os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    seconds = time.perf_counter() - start

    with open(result_file, "w", encoding="ascii") as output:
        output.write(
            f"{seconds!r} {usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
