"""grader: an automated grading harness for PyTorch deep-learning assignments.

Importing the package is cheap on purpose: nothing here imports torch, so ``grader --help``
answers at once. Heavy modules are imported where they are used.
"""

__version__ = "0.1.0"
