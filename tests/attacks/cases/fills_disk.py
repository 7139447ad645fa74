"""Writes until the disk is full."""
import os

block = b"x" * 2**20
with open(os.path.join(os.environ.get("TMPDIR", "/tmp"), "fill.bin"), "wb") as f:
    while True:
        f.write(block)
