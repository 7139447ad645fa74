"""The check kinds' shared building blocks. A kind is one module in ``grader.checks``; what several
kinds use lives here, one job per module:

* ``common`` — building or calling a target with a rubric's arguments, exact-type checks, names,
  shapes and a student's error in one line for messages;
* ``capture`` — the capture view: which of a spec's fields the probe receives (``JUDGE_ONLY``
  marks the judge's), and the probe side's spec rebuilt from it;
* ``model_capture`` — a built model as artifacts (graphs with their weights) for the measured
  model kinds, and the rules a graph must meet on the measure side;
* ``forbidden`` — did hand-written code call the torch op it re-implements (a source scan and a
  dispatch record, matched on the host).
"""
