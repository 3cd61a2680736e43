"""End to end: `smcore run` on the small embedded demo, then a rerun that skips every step."""


import pandas as pd
import pytest
import xarray as xr

from smcore.cli import main
from smcore.config import load_config
from smcore.pipeline import file_state, is_fresh, mark_done, step_key
from smcore.workdir import WorkDir


def test_step_key_changes_with_inputs(tmp_path):
    f = tmp_path / "a"
    f.write_text("1")
    k1 = step_key(files=file_state([f]))
    f.write_text("22")
    assert step_key(files=file_state([f])) != k1
    wd = WorkDir(tmp_path)
    out = tmp_path / "out"
    assert not is_fresh(wd, "x", k1, [out])
    out.write_text("")
    mark_done(wd, "x", k1, 1.0)
    assert is_fresh(wd, "x", k1, [out])
    assert not is_fresh(wd, "x", "other", [out])
    out.unlink()
    assert not is_fresh(wd, "x", k1, [out])


@pytest.mark.slow
def test_run_small_demo_end_to_end_and_skip(tmp_path, capsys):
    data = tmp_path / "data"
    assert main(["demo-data", str(data), "--small"]) == 0
    cfg = load_config(data / "smcore.toml")
    tiny = tmp_path / "tiny.toml"
    text = (data / "smcore.toml").read_text()
    text = text.replace("epochs = 100", "epochs = 1").replace("features = 64", "features = 8")
    tiny.write_text(text.replace("depth = 15", "depth = 2"))
    wd = tmp_path / "wd"
    args = [
        "run", "--cmip6", str(data / "cmip6"), "--era5", str(data / "era5land"), "--workdir", str(wd),
        "--truth", str(data / "truth"), "--config", str(tiny), "--no-progress",
    ]
    assert main(args) == 0
    w = WorkDir(wd)
    for exp in cfg.experiments:
        ds = xr.open_dataset(w.product(exp))
        assert ds["ssm"].attrs["units"] == "m3 m-3"
        assert ds["ssm"].shape[1:] == cfg.target.shape
    metrics = pd.read_csv(w.evaluation / "metrics.csv")
    assert {"CMIP6_DL", "ensemble_mean", "ridge_stacking"} <= set(metrics["product"])
    assert (w.analysis / "ssmi_trends.nc").exists()
    assert len(pd.read_csv(w.history)) == 1
    capsys.readouterr()
    assert main(args) == 0
    out = capsys.readouterr().out
    for name in ("train", "predict", "evaluate", "analyse"):
        assert f"[{name}] up to date, skipping" in out
    assert "up to date, reusing" in out
