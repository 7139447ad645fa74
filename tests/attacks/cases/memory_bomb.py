"""Allocates until something gives, then (if it survives) defines its work."""
from torch import nn

hoard = []
while True:
    hoard.append(bytearray(64 * 2**20))
