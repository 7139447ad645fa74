"""Dereferences a null pointer through ctypes."""
import ctypes

answer = 42
ctypes.string_at(0)
