"""Never finishes, without using any CPU."""
import time

answer = 42
time.sleep(10**6)
