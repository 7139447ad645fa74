"""Scoring: pure functions from check outcomes to points and totals. No I/O, no torch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Protocol


class Scored(Protocol):
    points: float
    max_points: float
    visibility: str
    counted: bool


def points_for(max_points: float, fraction: float, partial_credit: bool) -> float:
    """Points earned: all or nothing, or the passed fraction when the check allows partial credit."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be within [0, 1], got {fraction}")
    earned = max_points * fraction if partial_credit else (max_points if fraction == 1.0 else 0.0)
    return round(earned, 4)


@dataclass(frozen=True)
class Totals:
    score: float
    max_score: float
    visible_score: float
    visible_max: float

    @property
    def percent(self) -> float:
        return 100.0 * self.score / self.max_score if self.max_score else 100.0


def totals(results: Iterable[Scored]) -> Totals:
    """Sum points over the counted checks, and over the counted checks students can see.

    A check that is not ``counted`` (skipped because the grading machine lacks something) adds
    nothing to either side: it neither costs the student points nor is there to be earned."""
    score = max_score = visible_score = visible_max = 0.0
    for r in results:
        if not r.counted:
            continue
        score += r.points
        max_score += r.max_points
        if r.visibility == "visible":
            visible_score += r.points
            visible_max += r.max_points
    return Totals(round(score, 4), round(max_score, 4), round(visible_score, 4), round(visible_max, 4))
