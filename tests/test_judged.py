"""The by-eye verdicts behind the demo pack's picture-quality figures (research/records/*.json) and their tally
(research/analysis/tally_judged.py): counts against hand-computed ones, the record's shape, and the figures the docs quote."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # research.* (conftest.py does the same)
from research.analysis import tally_judged as tj  # noqa: E402

JUDGED = ROOT / "research" / "records" / "grids_160.json"


def face(male, verdict, position=0):
    return {"male": male, "verdict": verdict, "position": position}


def test_tally_counts_by_verdict_and_gender():
    faces = [face(True, "coherent"), face(True, "clear"), face(True, "clear"), face(False, "mild"),
             face(False, "coherent"), face(False, "coherent"), face(False, "coherent")]
    assert tj.tally(faces) == {"all": (4, 1, 2), "men": (1, 0, 2), "women": (3, 1, 0)}
    assert tj.tally([]) == {"all": (0, 0, 0), "men": (0, 0, 0), "women": (0, 0, 0)}
    with pytest.raises(ValueError, match="unknown verdicts \\['composite'\\]"):
        tj.tally([face(True, "composite")])


def test_flag_quality_auc_and_threshold_counts_by_hand():
    faces = [{"verdict": "clear", "p_composite": 0.6}, {"verdict": "clear", "p_composite": 0.2},
             {"verdict": "coherent", "p_composite": 0.1}, {"verdict": "coherent", "p_composite": 0.2},
             {"verdict": "coherent", "p_composite": 0.5}, {"verdict": "mild", "p_composite": 0.9}]
    auc, rows = tj.flag_quality(faces, thresholds=(0.4,))
    assert auc == pytest.approx(4.5 / 6)  # 0.6 beats all three; 0.2 beats 0.1, ties 0.2; the mild face is left out
    assert rows == [(0.4, 1, 2, 1, 3)]
    with pytest.raises(ValueError, match="clear and coherent"):
        tj.flag_quality(faces[2:])


def test_the_default_grid_shows_the_first_twelve_of_each_gender():
    shown = [p for p in range(48) if tj.shown_by_default({"position": p})]
    assert shown == list(range(12)) + list(range(24, 36))


def test_the_record_is_complete_and_matches_what_the_docs_quote():
    doc = json.loads(JUDGED.read_text())
    fresh, fixed = doc["fresh"]["faces"], doc["fixed_grid"]["faces"]
    for s in (7, 8):
        draw = [f for f in fresh if f["seed"] == s]
        assert [f["position"] for f in draw] == list(range(48))
        assert [f["male"] for f in draw] == [True] * 24 + [False] * 24
    assert len({(f["seed"], f["file"]) for f in fresh}) == 96 and len({f["file"] for f in fixed}) == 24
    assert all(f["file"].startswith("images/") and f["file"].endswith(".jpg") for f in fresh + fixed)
    rows = dict(tj.rows(doc))
    assert rows["fixed grid"]["all"] == (12, 9, 3)
    assert rows["fresh, all"] == {"all": (43, 26, 27), "men": (17, 14, 17), "women": (26, 12, 10)}
    auc, rows = tj.flag_quality(fresh)
    assert round(auc, 2) == 0.74 and rows[1] == (0.4, 15, 27, 3, 43)
    # the product page quotes the current pack's figures, the research log the same figures in their history
    for page in (ROOT / "docs" / "demo-pack.md", ROOT / "research" / "records" / "log.md"):
        docs = page.read_text()
        assert "43 coherent, 26 mild and 27 clear composites" in docs, page
        assert "12 coherent, 9 mild and 3 clear" in docs, page
        assert "AUC 0.74 (above 0.4: 15 of the 27 clear composites, 3 of the 43 coherent faces)" in docs, page
    assert "research/records/grids_160.json" in (ROOT / "docs" / "demo-pack.md").read_text()


def test_the_script_prints_the_table():
    r = subprocess.run([sys.executable, "research/analysis/tally_judged.py", str(JUDGED)], cwd=ROOT, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "fresh, all                            96              43 / 26 / 27    17/14/17    26/12/10" in r.stdout
