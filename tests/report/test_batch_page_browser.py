"""The batch page in a real headless browser (Chromium driven by Playwright): the student table
sorts and filters, every link leads to a page that exists, and nothing is logged as an error.

Skips, saying what to install, where Playwright or a Chromium is missing (`.ci/run` installs
Chromium on CI machines that can)."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from grader import report
from tests.report.test_triage import batch

playwright = pytest.importorskip("playwright.sync_api", reason="needs Playwright (pip install playwright)")
CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        try:
            launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        except Exception as exc:  # noqa: BLE001 - any failure to start means: no browser here
            pytest.skip(f"no Chromium to drive (apt-get install chromium, or playwright install chromium): {exc}")
        yield launched
        launched.close()


@pytest.fixture
def page(browser, tmp_path, tiny_rubric):
    results = batch()
    index = report.write_batch(results, tiny_rubric, tmp_path)
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(index.as_uri())
    yield page
    assert errors == [], f"the page logged errors: {errors}"
    page.close()


def visible_students(page) -> list[str]:
    return page.eval_on_selector_all("#students tbody tr:not([hidden]) td:first-child",
                                     "cells => cells.map(c => c.textContent.trim())")


def test_the_student_table_sorts_by_any_column(page):
    page.click("#students th:has-text('%')")
    ascending = visible_students(page)
    assert ascending[-1] in ("ana", "ben") and page.get_attribute("#students th:has-text('%')", "aria-sort") == "ascending"
    page.click("#students th:has-text('%')")
    assert visible_students(page)[0] in ("ana", "ben")
    assert page.get_attribute("#students th:has-text('%')", "aria-sort") == "descending"
    page.click("#students th:has-text('student')")
    assert visible_students(page) == ["ana", "ben", "cy", "dee", "eve", "fay", "gus"]


def test_the_student_table_filters_by_name_status_and_attention(page):
    assert page.inner_text("#shown") == "7 of 7 shown"
    page.fill("#filter", "E")
    assert visible_students(page) == ["ben", "dee", "eve"] and page.inner_text("#shown") == "3 of 7 shown"
    page.fill("#filter", "")
    page.select_option("#status", "crash")
    assert visible_students(page) == ["fay"]
    page.select_option("#status", "")
    page.check("#only-attention")
    assert visible_students(page) == ["ana", "ben", "eve", "fay", "gus"]


def test_the_histogram_counts_and_every_link_leads_somewhere(page):
    counts = page.eval_on_selector_all("#histogram b", "bars => bars.map(b => b.textContent)")
    assert counts == ["2", "", "", "2", "", "", "1", "", "", "2"]  # at 0, 1/3, 2/3 and all of the points
    hrefs = page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)")
    assert len(hrefs) >= 7 + 2
    for href in hrefs:
        assert Path(unquote(urlparse(href).path)).is_file(), href
    page.click("#students a:has-text('gus')")
    assert page.title().startswith("gus")
