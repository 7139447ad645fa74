"""Spins on the CPU at import, forever."""
answer = 42
while True:
    pass
