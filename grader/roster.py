"""A course roster: who the students are in the LMS, and which submission is whose.

An instructor downloads the class list from the LMS (Canvas's gradebook export, Moodle's grading
worksheet or participants list, Gradescope's roster, or any CSV with a name and an id) and passes
it to ``grader export --roster``. Columns are recognised by their usual headers (``COLUMNS``);
the grade exports then carry the ids the LMS matches rows on.

A submission is matched to a student by its file name, in the order LMS downloads name files:

1. Canvas: ``garciajose_12345_678901_hw1.ipynb`` (``_LATE_`` after the login when late): the
   number after the login is the student's Canvas user id (the roster's ``ID``).
2. Moodle: ``José García_4021_assignsubmission_file_hw1.ipynb`` (a file or a folder): the number
   is the participant number of the grading worksheet's ``Participant 4021``; without one, the
   full name before it is matched.
3. Anything else: the whole name, then each of its parts split at ``_``, ``-``, ``.`` or spaces
   and each run of two or three of them (``hw3_anh_nguyen`` holds ``anh nguyen``), compared with
   every student's login, SIS id, LMS id, e-mail address (and the part before its ``@``) and name.

A name that matches no student, or more than one, is unmatched: it is listed, never guessed.
Two submissions matched to one student are a conflict, listed too; neither is exported for that
student until a person decides (rename or remove one file, and export again).
"""

from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from grader.errors import GraderError

# Our field -> the headers (compared without case, spaces or punctuation) that LMS exports use for it.
COLUMNS: dict[str, tuple[str, ...]] = {
    "name": ("student", "name", "full name", "student name", "display name"),
    "first_name": ("first name", "firstname", "given name"),
    "last_name": ("last name", "lastname", "surname", "family name"),
    "lms_id": ("id", "canvas user id", "user id", "identifier", "participant"),
    "sis_id": ("sis user id", "id number", "idnumber", "sid", "student id", "student number", "matriculation number"),
    "login": ("sis login id", "login id", "login", "username", "user name", "netid"),
    "email": ("email", "email address", "e-mail", "e-mail address"),
    "section": ("section", "sections", "group"),
    "role": ("role", "roles"),
}
MIN_PART = 3  # a shorter part of a file name ("2" of "hw_2") is not taken for an id
IDS = ("lms_id", "sis_id", "login", "email")  # the fields an LMS matches a grade row on
# Rows of an LMS's export that are not students: Canvas's points row and its test student.
NOT_STUDENTS = {"points possible", "student, test", "test student"}

_CANVAS = re.compile(r"^[a-z0-9]+_(?:late_)?(?P<id>\d+)_\d+_.+$", re.IGNORECASE)
_MOODLE = re.compile(r"^(?P<name>.+?)_(?P<id>\d+)_assignsubmission_[a-z]+_", re.IGNORECASE)
_PARTICIPANT = re.compile(r"^participant\s*(\d+)$", re.IGNORECASE)


@dataclass(frozen=True)
class Student:
    """One row of the roster; fields the file did not have are empty."""

    name: str
    lms_id: str = ""
    sis_id: str = ""
    login: str = ""
    email: str = ""
    section: str = ""
    row: int = 0  # the line of the roster file, for messages

    def keys(self) -> set[str]:
        """What a file name may carry to name this student, normalised (``_folded``)."""
        found = {self.lms_id, self.sis_id, self.login, self.email, self.email.split("@")[0], self.name}
        if "," in self.name:  # Canvas writes "García, José"; the file says "jose_garcia"
            last, first = self.name.split(",", 1)
            found.add(f"{first} {last}")
        return {_folded(k) for k in found if k.strip()}

    @property
    def label(self) -> str:
        ident = next((getattr(self, f) for f in IDS if getattr(self, f)), "")
        return f"{self.name} ({ident})" if ident and ident != self.name else self.name


@dataclass
class Matching:
    """Submissions (by student id of the batch) mapped to roster students, and what did not match."""

    matched: dict[str, Student] = field(default_factory=dict)
    unmatched: dict[str, str] = field(default_factory=dict)  # submission id -> why
    conflicts: dict[Student, list[str]] = field(default_factory=dict)  # student -> their submission ids
    without_submission: list[Student] = field(default_factory=list)

    def problems(self) -> list[str]:
        """One line per thing a person should look at, for the terminal and the export's notes."""
        lines = [f"submission {sub!r} matched no student of the roster ({why})"
                 for sub, why in sorted(self.unmatched.items())]
        lines += [f"{student.label} has {len(subs)} submissions ({', '.join(sorted(subs))}): none is exported "
                  "for them until one is removed or renamed" for student, subs in self.conflicts.items()]
        lines += [f"{student.label} has no submission" for student in self.without_submission]
        return lines


@dataclass(frozen=True)
class Roster:
    path: Path
    students: tuple[Student, ...]
    columns: tuple[str, ...]  # the fields the file had

    def match(self, submissions: dict[str, str]) -> Matching:
        """Match ``submissions`` (batch student id -> the file or folder name as submitted)."""
        result = Matching()
        claimed: dict[Student, list[str]] = {}
        for sub_id, file_name in submissions.items():
            found, why = self._find(file_name)
            if found is None:
                result.unmatched[sub_id] = why
            else:
                claimed.setdefault(found, []).append(sub_id)
        for student, subs in claimed.items():
            if len(subs) == 1:
                result.matched[subs[0]] = student
            else:
                result.conflicts[student] = subs
        result.without_submission = [s for s in self.students if s not in claimed]
        return result

    def _find(self, file_name: str) -> tuple[Student | None, str]:
        stem = Path(file_name).stem if Path(file_name).suffix.lower() in (".ipynb", ".py", ".zip") else file_name
        if m := _CANVAS.match(file_name):
            return self._one("lms_id", m["id"], "Canvas user id")
        if m := _MOODLE.match(file_name):
            if "lms_id" in self.columns:
                return self._one("lms_id", m["id"], "Moodle participant number")
            return self._by_key(m["name"], "the Moodle name")
        student, why = self._by_key(stem, "the file name")
        if student is not None or why.startswith("more than one"):
            return student, why
        parts = [p for p in re.split(r"[\s_.\-]+", stem) if p]
        runs = ["".join(parts[i:i + n]) for n in (1, 2, 3) for i in range(len(parts) - n + 1)]  # "anh_nguyen"
        hits = {s for run in runs if len(run) >= MIN_PART for s in self._with_key(run)}
        if len(hits) == 1:
            return hits.pop(), ""
        if hits:
            return None, f"its name names more than one student: {', '.join(sorted(s.label for s in hits))}"
        return None, "no id, login, e-mail or name of the roster in its name"

    def _one(self, field_name: str, value: str, what: str) -> tuple[Student | None, str]:
        hits = [s for s in self.students if getattr(s, field_name) == value]
        if len(hits) == 1:
            return hits[0], ""
        if not hits:
            return None, f"{what} {value} is not in the roster"
        return None, f"{what} {value} is on {len(hits)} rows of the roster"

    def _with_key(self, text: str) -> list[Student]:
        key = _folded(text)
        return [s for s in self.students if key in s.keys()] if key else []

    def _by_key(self, text: str, what: str) -> tuple[Student | None, str]:
        hits = self._with_key(text)
        if len(hits) == 1:
            return hits[0], ""
        if hits:
            return None, f"more than one student has {what} {text!r}: {', '.join(s.label for s in hits)}"
        return None, f"no student has {what} {text!r}"


def load(path: Path) -> Roster:
    """Read a roster CSV (UTF-8, with or without a byte-order mark, as Excel and the LMSs write it)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise GraderError("the roster file does not exist", where=str(path),
                          hint="download the class list from your LMS as CSV and pass its path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GraderError(f"the roster cannot be read as UTF-8 text ({exc})", where=str(path),
                          hint="save it from the spreadsheet as 'CSV UTF-8'") from None
    try:
        dialect = csv.Sniffer().sniff(text.split("\n", 1)[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    rows = list(csv.reader(text.splitlines(), dialect))
    if not rows:
        raise GraderError("the roster is empty", where=str(path), hint="pass the class list your LMS exports")
    header = rows[0]
    where = _columns(header)
    if not ({"name", "first_name", "last_name"} & where.keys() or set(IDS) & where.keys()):
        raise GraderError(f"the roster has no column the grader recognises (its header: {', '.join(header)})",
                          where=str(path), hint="name the columns as your LMS does: "
                          + "; ".join(f"{f}: {', '.join(repr(h) for h in hs[:3])}" for f, hs in COLUMNS.items()))
    students: list[Student] = []
    for number, row in enumerate(rows[1:], start=2):
        cell = {f: row[i].strip() if i < len(row) else "" for f, i in where.items()}
        name = cell.get("name") or " ".join(filter(None, (cell.get("first_name"), cell.get("last_name"))))
        role = cell.get("role", "student").casefold() or "student"
        if not any(cell.values()) or name.strip().casefold() in NOT_STUDENTS or "student" not in role:
            continue
        lms_id = cell.get("lms_id", "")
        if m := _PARTICIPANT.match(lms_id):  # Moodle's worksheet: "Participant 4021"
            lms_id = m[1]
        students.append(Student(name=unicodedata.normalize("NFC", name), lms_id=lms_id, sis_id=cell.get("sis_id", ""),
                                login=cell.get("login", ""), email=cell.get("email", ""),
                                section=cell.get("section", ""), row=number))
    _refuse_duplicates(students, path)
    return Roster(path=path, students=tuple(students), columns=tuple(where))


def _columns(header: list[str]) -> dict[str, int]:
    """Our field -> its column index, for the headers we recognise (the first of each wins)."""
    known = {_plain(h): f for f, hs in COLUMNS.items() for h in hs}
    where: dict[str, int] = {}
    for index, title in enumerate(header):
        plain = _plain(title)
        field_name = known.get(plain) or known.get(re.sub(r"\d+$", "", plain))  # "Email 1"
        if field_name and field_name not in where:
            where[field_name] = index
    return where


def _refuse_duplicates(students: list[Student], path: Path) -> None:
    for field_name in IDS:
        seen: dict[str, Student] = {}
        for student in students:
            value = getattr(student, field_name)
            if value and value in seen:
                raise GraderError(f"two rows of the roster share the {field_name.replace('_', ' ')} {value!r} "
                                  f"(lines {seen[value].row} and {student.row})", where=str(path),
                                  hint="each student must be one row; fix the file and run again")
            seen[value] = student


def _plain(header: str) -> str:
    return re.sub(r"[^a-z0-9@-]+", " ", header.casefold()).strip()


def _folded(text: str) -> str:
    """Case, accents and punctuation left out: ``José García``, ``jose_garcia`` and ``JoseGarcia``
    are one key."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if c.isalnum() and not unicodedata.combining(c))
