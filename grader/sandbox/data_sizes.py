"""Literal split sizes written for the real data set still work on its smaller synthetic stand-in.

The PyTorch tutorials split Fashion-MNIST with ``random_split(train, [50000, 10000])``; CIFAR-10
starter code with ``[45000, 5000]``. Those lengths are right for the real 60,000 (or 50,000)
images, and torch refuses them on the grader's synthetic stand-in of 2,000, so the sets, the
loaders and everything trained on them would never exist, for the grader's choice of data, not
the student's. Inside the sandbox, when the data is synthetic (``ENV`` lists each split's real
and stand-in size), ``random_split`` is wrapped:

* integer lengths whose sum is what the data set would hold at the real size (the stand-in's
  length times its scale, within 1%: a split of an already split set qualifies too) are scaled to
  the stand-in, in the same proportions (largest remainder, so they add up exactly);
* anything else (fractions, lengths that fit, wrong sums on any data) goes to torch unchanged, so
  a student's own mistake still raises torch's own error.

A loader that drops its last short batch (``DataLoader(..., drop_last=True)``) over a set
smaller than one batch yields nothing: on the real data a 10% validation split of 60,000 images
fills batches of 256, on a stand-in of 2,000 its 200 images fill none, and the epoch's average
loss divides by zero. So ``DataLoader`` is wrapped too: where the set holds fewer items than one
batch and the same set at the real size would fill one (its length times the stand-in's largest
scale), the loader keeps its one short batch. Anything else, a set that fills a batch included,
keeps ``drop_last`` as the student wrote it.

The host says what was scaled in the result's notes (``notes_for``: a scan of the submitted code,
never the student's process's word). Code that needs the real size in other ways (``assert
len(train) == 60000``) cannot run on a stand-in; the notebook check sends such a failure to a
person instead of charging it (``checks.notebook``).
"""

from __future__ import annotations

import ast
import json
import os
from typing import Any, Sequence
from grader import pysource

ENV = "GRADER_SIZE_STAND_INS"  # JSON: [[real size, stand-in size], ...] of the served synthetic set
TOLERANCE = 0.01



def env_for(stand_ins: list[tuple[int, int]]) -> dict[str, str]:
    """The sandbox environment that switches the wrapping on (nothing for real data)."""
    return {ENV: json.dumps([list(pair) for pair in stand_ins])} if stand_ins else {}


def _pairs() -> list[tuple[int, int]]:
    try:
        pairs = json.loads(os.environ.get(ENV, "[]"))
        return [(int(real), int(small)) for real, small in pairs if int(real) > 0 and int(small) > 0]
    except (ValueError, TypeError):
        return []


def scale(lengths: Sequence[Any], available: int, pairs: list[tuple[int, int]]) -> list[int] | None:
    """``lengths`` scaled to ``available`` items when they were written for the real data set;
    ``None`` when they are to be left alone."""
    if not lengths or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in lengths):
        return None
    wanted = sum(lengths)
    if available <= 0 or wanted == available:
        return None
    if not any(abs(wanted - available * real / small) <= TOLERANCE * wanted for real, small in pairs):
        return None
    exact = [n * available / wanted for n in lengths]
    result = [int(x) for x in exact]
    by_remainder = sorted(range(len(lengths)), key=lambda i: exact[i] - result[i], reverse=True)
    for i in by_remainder[:available - sum(result)]:
        result[i] += 1
    return result


def keeps_short_batch(items: int, batch_size: Any, pairs: list[tuple[int, int]]) -> bool:
    """Whether a ``drop_last`` loader over ``items`` items of a stand-in keeps its one short batch:
    it would yield none, and the same set at the real size would fill one."""
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or not 0 < items < batch_size:
        return False
    return any(items * real / small >= batch_size for real, small in pairs)


def wanted_by(texts: list[str]) -> bool:
    """Whether the code splits data with ``random_split`` or drops short batches at all (the
    wrapping imports torch)."""
    return any("random_split" in text or "drop_last" in text for text in texts)


def install() -> bool:
    """Wrap ``torch.utils.data.random_split`` and ``DataLoader`` when the served data is a
    stand-in; True if wrapped."""
    pairs = _pairs()
    if not pairs:
        return False
    import torch.utils.data as data
    import torch.utils.data.dataset as dataset_module

    original = dataset_module.random_split
    if getattr(original, "_grader_scales", False):
        return True
    _keep_short_batches(pairs)

    def random_split(dataset: Any, lengths: Sequence[Any], *args: Any, **kwargs: Any) -> Any:
        try:
            available = len(dataset)
        except TypeError:
            return original(dataset, lengths, *args, **kwargs)
        fitted = scale(list(lengths), available, pairs)
        return original(dataset, lengths if fitted is None else fitted, *args, **kwargs)

    random_split._grader_scales = True  # type: ignore[attr-defined]
    random_split.__wrapped__ = original  # type: ignore[attr-defined]
    random_split.__doc__ = original.__doc__
    dataset_module.random_split = random_split
    data.random_split = random_split
    return True


def _keep_short_batches(pairs: list[tuple[int, int]]) -> None:
    """``DataLoader.__init__`` wrapped: ``drop_last`` off where ``keeps_short_batch`` says so."""
    from torch.utils.data import DataLoader

    original = DataLoader.__init__

    def __init__(self: Any, dataset: Any, batch_size: Any = 1, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("drop_last") and not args:
            try:
                items = len(dataset)
            except TypeError:  # an iterable set: no length to compare
                items = 0
            if keeps_short_batch(items, batch_size, pairs):
                kwargs["drop_last"] = False
        original(self, dataset, batch_size, *args, **kwargs)

    __init__.__wrapped__ = original  # type: ignore[attr-defined]
    DataLoader.__init__ = __init__  # type: ignore[method-assign]


def notes_for(texts: list[tuple[str, str]], stand_ins: list[tuple[int, int]]) -> list[str]:
    """What the wrapping changes for this code, found on the host in the submitted source: each
    ``random_split`` call whose literal lengths add up to a real split's size, as a note for the
    result (a split of a split is scaled too, but only the running code knows its input's size)."""
    notes = []
    for label, text in texts:
        try:
            tree = pysource.parse(text)
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if stand_ins and _drops_last(node):
                notes.append(f"{label}, line {node.lineno}: DataLoader(..., drop_last=True): on the synthetic "
                             "stand-in, if the set behind it holds fewer images than one batch where the real data "
                             "set would fill one, it keeps its one short batch instead of yielding none")
            lengths = _literal_split(node)
            for real, small in stand_ins if lengths else []:
                if sum(lengths) == real:  # type: ignore[arg-type]
                    notes.append(f"{label}, line {node.lineno}: random_split(..., {lengths}) is sized for the real "
                                 f"{real:,} images; the synthetic stand-in has {small:,}, so the lengths were scaled "
                                 f"to {scale(lengths, small, stand_ins)}")  # type: ignore[arg-type]
                    break
    return notes


def _literal_split(node: ast.AST) -> list[int] | None:
    """The integer lengths of a ``random_split(x, [a, b, ...])`` call written with literals."""
    if not isinstance(node, ast.Call):
        return None
    name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
    if name != "random_split":
        return None
    given = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "lengths"), None)
    if not isinstance(given, (ast.List, ast.Tuple)) or not given.elts:
        return None
    values = [e.value for e in given.elts if isinstance(e, ast.Constant)]
    if len(values) != len(given.elts) or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return None
    return values  # type: ignore[return-value]


def _drops_last(node: ast.AST) -> bool:
    """Whether ``node`` is a ``DataLoader(...)`` call with ``drop_last=True`` written as a literal."""
    if not isinstance(node, ast.Call):
        return False
    name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
    return name == "DataLoader" and any(k.arg == "drop_last" and isinstance(k.value, ast.Constant)
                                        and k.value.value is True for k in node.keywords)
