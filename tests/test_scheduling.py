"""make test's two workers: tests that share a build run in one worker (tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

from conftest import site_modules, work_group


def test_modules_that_take_the_built_site_share_one_group():
    modules = site_modules(Path(__file__).parent)
    assert {"tests/test_browser.py", "tests/test_reading.py", "tests/test_accessibility.py"} <= modules
    assert "tests/test_labs.py" not in modules and "tests/test_print.py" not in modules
    assert work_group("tests/test_browser.py::test_root_page_offers_both_editions", modules) == "site"
    assert work_group("tests/test_reading.py::test_search_snippets_come_from_the_prose[en-thread-local]", modules) == "site"


def test_other_modules_are_groups_of_their_own_and_lab_runs_float():
    modules = site_modules(Path(__file__).parent)
    assert work_group("tests/test_flags.py::test_missing_row_fails_at_the_directive[en]", modules) == "tests/test_flags.py"
    run = "tests/test_labs.py::test_lab_runs_and_matches_its_stored_transcript[xds]"
    assert work_group(run, modules) == run
    assert work_group("tests/test_labs.py::test_build_fails_on_a_stale_transcript", modules) == "tests/test_labs.py"


def test_a_new_module_that_takes_the_site_joins_its_group(tmp_path):
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_new.py").write_text("def test_something(visits, language):\n    pass\n", encoding="utf-8")
    (tests / "test_other.py").write_text("def test_other(tmp_path):\n    site = 1\n", encoding="utf-8")
    assert site_modules(tests) == {"tests/test_new.py"}
