"""Raises SystemExit(0) at import: the import fails, the run must not, and the answer before it counts."""
import sys

answer = 42
sys.exit(0)
