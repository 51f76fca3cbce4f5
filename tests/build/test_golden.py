"""The sample build must match the committed golden files byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.golden_build import GOLDEN, GOLDEN_FILES, build_sample_into


@pytest.mark.parametrize("name", GOLDEN_FILES)
def test_sample_build_matches_golden(tmp_path: Path, name: str) -> None:
    built = build_sample_into(tmp_path)
    expected = (GOLDEN / name).read_text(encoding="utf-8")
    actual = (built / name).read_text(encoding="utf-8")
    assert actual == expected, (
        f"{name} differs from tests/golden/sample/{name}; if the change is intended, "
        "run `python -m tests.golden_build` and commit the diff"
    )
