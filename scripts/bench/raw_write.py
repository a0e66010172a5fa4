#!/usr/bin/env python3
"""Raw durable write bandwidth of a directory's filesystem (the baseline of
issue 17's produce target: produce acks=all should reach 80% of it).

usage: raw_write.py DIR BYTES

Writes BYTES of incompressible bytes (one 16 MiB block from os.urandom,
written repeatedly: the generator's cost stays out of the figure, and no
filesystem on this machine compresses or deduplicates) into a new file in
DIR with plain write(2)s, then fdatasync(2)s it, like `dd conv=fdatasync`;
the time runs from the open to the end of the fdatasync. Prints one line
"raw_mib_s VALUE" and deletes the file (also on failure).
"""
import os, sys, time

BLOCK = 16 << 20

def main():
    if len(sys.argv) != 3:
        print(__doc__.strip(), file=sys.stderr)
        sys.exit(2)
    d, total = sys.argv[1], int(sys.argv[2])
    if total <= 0:
        sys.exit("raw_write.py: BYTES must be positive")
    block = os.urandom(min(BLOCK, total))
    path = os.path.join(d, f"raw-write.{os.getpid()}")
    try:
        t0 = time.monotonic()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            left = total
            view = memoryview(block)
            while left > 0:
                n = os.write(fd, view[: min(len(block), left)])
                left -= n
            os.fdatasync(fd)
        finally:
            os.close(fd)
        secs = time.monotonic() - t0
    finally:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    print("raw_mib_s", round(total / 2**20 / secs, 1))

main()
