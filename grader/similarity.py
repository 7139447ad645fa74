"""Which submissions of a batch share their code, with the course's own code subtracted.

The comparison is ``copydetect``'s (Python's tokens through Pygments, identifiers, strings and
comments replaced by placeholders, k-grams winnowed into fingerprints: Schleimer, Wilkerson and
Aiken's "winnowing", the method behind MOSS), run here on the host, offline. It was chosen over
an AST diff because fingerprints do not care about order (reordered functions, cells split or
merged), over MOSS because nothing leaves the machine, and because it reports *where* two texts
match, which the side-by-side pages show.

Each submission's code is its notebook's code cells or its modules, as submitted (markdown and
outputs left out). Fingerprints of the starter and provided code (``submission.provided`` of the
rubric, and any ``--starter`` files) are boilerplate: removed from every submission before
comparing, so a notebook that is only the starter matches nothing.

A pair's score is the larger of the two shares of each side's code found in the other (a short
submission copied whole into a long one scores high). Pairs at or above ``THRESHOLD`` are listed
for a person; a score never changes a grade.
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable

from typing import TYPE_CHECKING

import numpy as np

from grader import submission
from grader.fsutil import atomic_write
from grader.rubric import LoadedRubric

if TYPE_CHECKING:  # copydetect is imported where it is used: reading a report must not need it
    from copydetect.detector import CodeFingerprint

    from grader.results import SubmissionResult

NOISE = 25  # shortest match (characters of filtered code) that can count: below it, coincidence
GUARANTEE = 30  # a match this long is always found (the winnowing window is GUARANTEE - NOISE + 1)
# A pair at or above this share is listed for a person (our own examples on one task, written apart: 0.3-0.5).
THRESHOLD = 0.6
MAX_PAGES = 300  # side-by-side pages written, highest pairs first (a batch of copies of one file has thousands)
FILE_NAME = "similarity.json"
PAGES = "similarity"


@dataclass
class Code:
    """One side of the comparison: whose code, from where, and its text."""

    student: str
    stem: str  # the batch page's name for the student's page ("" for an earlier term's)
    source: str
    text: str
    term: str = ""  # the earlier output folder it came from, "" for this batch


@dataclass
class Pair:
    first: str
    second: str
    score: float  # max of the two shares
    shares: tuple[float, float]
    page: str  # the side-by-side page, relative to the batch folder
    second_term: str = ""


@dataclass
class Report:
    pairs: list[Pair] = field(default_factory=list)  # at or above the threshold, highest first
    compared: int = 0
    unreadable: list[str] = field(default_factory=list)  # submissions whose code could not be read
    threshold: float = THRESHOLD

    def save(self, out: Path) -> None:
        atomic_write(out / FILE_NAME, json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, out: Path) -> Report | None:
        """The report ``grader similarity`` left in a batch folder, or None."""
        try:
            raw = json.loads((out / FILE_NAME).read_text(encoding="utf-8"))
            return cls(pairs=[Pair(**{**p, "shares": tuple(p["shares"])}) for p in raw["pairs"]],
                       compared=raw["compared"], unreadable=raw["unreadable"], threshold=raw["threshold"])
        except (OSError, ValueError, KeyError, TypeError):
            return None


def code_of(source: Path, rubric: LoadedRubric) -> str | None:
    """The code of one submission as submitted (code cells or modules, in order), or None when it
    cannot be read (gone, rejected)."""
    if not source.exists():
        return None
    work = Path(tempfile.mkdtemp(prefix="grader-similarity-"))
    try:
        entry = submission.stage(submission.single(source), work / "s", rubric.model.submission.modules,
                                 tuple(rubric.model.submission.forms))
        return "\n\n".join(text for _, text in submission.code_texts(entry))
    except (submission.Rejected, OSError):
        return None
    finally:
        shutil.rmtree(work, ignore_errors=True)


def boilerplate(rubric: LoadedRubric, starters: Iterable[Path] = ()) -> np.ndarray:
    """Fingerprints of the course's own code: the provided files and the starter files given."""
    texts = []
    for name in rubric.model.submission.provided:
        path = rubric.reference_dir / name
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        texts += [f.read_text(encoding="utf-8", errors="replace") for f in files if f.suffix == ".py"]
    for starter in starters:
        texts.append(code_of(starter, rubric) or "")
    hashes = [h for text in texts if text.strip() for h in _fingerprint(text).hashes]
    return np.unique(np.array(hashes, dtype=np.int64))


def compare(current: list[Code], earlier: list[Code], common: np.ndarray, threshold: float = THRESHOLD
            ) -> list[tuple[Pair, CodeFingerprint, CodeFingerprint, tuple[np.ndarray, np.ndarray]]]:
    """Every pair within ``current`` and between ``current`` and ``earlier``, scored; those at
    or above ``threshold``, highest first, with what the pages need."""
    from copydetect.detector import compare_files

    prints = [_fingerprint(c.text, common) for c in current]
    old_prints = [_fingerprint(c.text, common) for c in earlier]
    found = []
    candidates = [(i, j, current[j], prints[j]) for i in range(len(current)) for j in range(i + 1, len(current))]
    candidates += [(i, j, earlier[j], old_prints[j]) for i in range(len(current)) for j in range(len(earlier))]
    for i, _, other, other_print in candidates:
        mine = prints[i]
        if not mine.hashes or not other_print.hashes or not mine.hashes & other_print.hashes:
            continue
        _, shares, slices = compare_files(mine, other_print)
        score = float(max(shares))
        if score >= threshold:
            pair = Pair(first=current[i].student, second=other.student, score=round(score, 3),
                        shares=(round(float(shares[0]), 3), round(float(shares[1]), 3)),
                        page=f"{PAGES}/{_page_name(current[i], other)}.html", second_term=other.term)
            found.append((pair, mine, other_print, slices))
    return sorted(found, key=lambda item: -item[0].score)


def _fingerprint(text: str, common: np.ndarray | None = None) -> CodeFingerprint:
    from copydetect.detector import CodeFingerprint

    return CodeFingerprint("code.py", NOISE, GUARANTEE - NOISE + 1, boilerplate=common if common is not None and
                           len(common) else None, fp=io.StringIO(text))


def _page_name(first: Code, second: Code) -> str:
    prefix = f"{Path(second.term).name}-" if second.term else ""
    return f"{first.stem or first.student}--{prefix}{second.stem or second.student}"


def run(out: Path, rubric: LoadedRubric, results: list[SubmissionResult], starters: Iterable[Path] = (),
        against: Iterable[Path] = (), threshold: float = THRESHOLD) -> Report:
    """Compare the submissions of ``results`` (the batch folder ``out``'s) with each other and
    with those of the earlier folders ``against``; write the side-by-side pages of the pairs at or
    above ``threshold`` and ``out/similarity.json``, which the batch page shows; returns the report."""
    from grader.report import batches, page_names
    from grader.report.html import render_similar_pair

    report = Report(threshold=threshold)
    current = _codes(results, page_names(results), rubric, report.unreadable)
    earlier: list[Code] = []
    for folder in against:
        old, _ = batches.read_results(folder)
        earlier += _codes(old, ["" for _ in old], rubric, [], term=str(folder))
    found = compare(current, earlier, boilerplate(rubric, starters), threshold)
    shutil.rmtree(out / PAGES, ignore_errors=True)
    for rank, (pair, first, second, slices) in enumerate(found):
        if rank < MAX_PAGES:
            atomic_write(out / pair.page, render_similar_pair(pair, first.raw_code, second.raw_code, slices))
        else:
            pair.page = ""
    report.pairs = [pair for pair, *_ in found]
    report.compared = len(current) * (len(current) - 1) // 2 + len(current) * len(earlier)
    report.save(out)
    return report


def _codes(results: list[SubmissionResult], stems: list[str], rubric: LoadedRubric, unreadable: list[str],
           term: str = "") -> list[Code]:
    codes = []
    for result, stem in zip(results, stems):
        if result.status == "rejected":
            continue  # nothing of it was read as code
        text = code_of(Path(result.source), rubric)
        if text is None:
            unreadable.append(result.student)
        else:
            codes.append(Code(student=result.student, stem=stem, source=result.source, text=text, term=term))
    return codes
