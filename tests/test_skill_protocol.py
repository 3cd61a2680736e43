"""benchmarks/skill.py: the seed table's arithmetic and the generated docs block."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def skill():
    spec = importlib.util.spec_from_file_location("skill", ROOT / "benchmarks" / "skill.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(seed: int, dl_mae: float) -> dict:
    rows = [
        {"product": "CMIP6_DL", "MAE": dl_mae, "RMSD": 0.02, "ubRMSD": 0.02, "r": 0.9,
         "spatial_r": 0.9, "anomaly_r": 0.1},
        {"product": "ridge_stacking", "MAE": 0.0125, "RMSD": 0.018, "ubRMSD": 0.018, "r": 0.95,
         "spatial_r": 0.95, "anomaly_r": 0.3},
        {"product": "bias_corrected_ensemble_mean", "MAE": 0.0130, "RMSD": 0.019,
         "ubRMSD": 0.019, "r": 0.94, "spatial_r": 0.94, "anomaly_r": 0.35},
        {"product": "M1", "MAE": 0.2, "RMSD": 0.3, "ubRMSD": 0.3, "r": 0.5, "spatial_r": 0.5,
         "anomaly_r": 0.0},
    ]
    truth = pd.DataFrame([
        {"experiment": e, "product": p, "MAE": 0.013 + 0.001 * i}
        for i, p in enumerate(["CMIP6_DL", "ridge_stacking"]) for e in ("historical", "ssp126")
    ])
    future = pd.DataFrame({"trend_pattern_r": [0.8], "change_rate_mae_pct": [1.5]},
                          index=pd.Index(["ssp126"], name="experiment"))
    return {"seed": seed, "validation": {"MAE": dl_mae, "RMSD": 0.02, "anomaly_r": 0.1},
            "test": pd.DataFrame(rows), "truth": truth, "future": future}


def test_dl_minus_best_baseline_per_seed_and_where_it_loses(skill):
    body, record = skill.summarise([_run(1, 0.0120), _run(2, 0.0130)], {"M1"})
    mae = record["dl_minus_best"]["MAE"]
    assert mae["best"] == "ridge_stacking"
    assert mae["diff"] == pytest.approx([-0.0005, 0.0005])
    assert "| MAE | ridge_stacking | 0.00000 ± 0.00071 | 1 of 2 |" in body
    anomaly = record["dl_minus_best"]["anomaly_r"]
    assert anomaly["best"] == "bias_corrected_ensemble_mean"
    assert "| anomaly_r | bias_corrected_ensemble_mean | -0.250 ± 0.000 | 0 of 2 |" in body
    assert "M1" not in body.split("CMIP6_DL − best")[0]  # single models stay out of the table
    assert "| ssp126 | 0.800 ± 0.000 | 1.50 ± 0.00 |" in body


def test_docs_block_is_replaced_not_duplicated(skill, tmp_path):
    doc = tmp_path / "evaluation.md"
    doc.write_text("# Evaluation\n\ntext\n")
    skill.write_docs(doc, "rho0", "header one", "table one")
    skill.write_docs(doc, "rho0", "header two", "table two")
    skill.write_docs(doc, "rho05", "other", "table")
    text = doc.read_text()
    assert text.count("<!-- skill:rho0:start -->") == 1 and "table one" not in text
    assert "header two\n\ntable two\n<!-- skill:rho0:end -->" in text
    assert text.startswith("# Evaluation\n\ntext\n") and "<!-- skill:rho05:start -->" in text
