"""Raises SystemExit(0) at import: the import fails, the run must not."""
import sys

answer = 42
sys.exit(0)
