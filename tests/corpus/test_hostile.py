"""Issue 13, "evidence is sacred": every reproduced failure of the adversarial pass, as a test.

The cases and their checks live in :mod:`tests.corpus.hostile` (shared with ``bench/replay_corpus.py``).
Each must end with the expected exit code and message, leave every evidence byte as it was, leave no
junk (no stray file, no empty folder), print no traceback and not hang. Signals run in a real process.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.corpus.hostile import CASE_NAMES, HostileCase, build_hostile_corpus, run_case


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory, tiny_onnx_model: Path) -> tuple[Path, dict[str, HostileCase]]:
    root = tmp_path_factory.mktemp("hostile")
    cases = build_hostile_corpus(root, tiny_onnx_model)
    return root, {c.name: c for c in cases}


def test_the_corpus_covers_every_reproduction(hostile: tuple[Path, dict[str, HostileCase]]) -> None:
    _root, cases = hostile
    assert list(cases) == CASE_NAMES
    assert {c.issue for c in cases.values()} == set(range(1, 14))  # all 13 reproductions of the issue


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", CASE_NAMES)
def test_hostile_case(name: str, hostile: tuple[Path, dict[str, HostileCase]]) -> None:
    root, cases = hostile
    row = run_case(cases[name], root, in_process=True)
    assert row["ok"], row
    assert row["evidence_unchanged"] and not row["junk_left"] and not row["traceback"] and not row["hang"]
