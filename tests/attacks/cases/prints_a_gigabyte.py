"""Prints a gigabyte to stdout at import."""
chunk = "x" * 2**20
for _ in range(1024):
    print(chunk)
