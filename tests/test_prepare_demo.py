"""catalog + prepare on the embedded demo generator's output (small set, 0.1° ERA5-Land)."""

import json

import numpy as np
import pytest
import xarray as xr

from smcore.cli import main
from smcore.config import load_config
from smcore.prep import open_prepared


@pytest.mark.slow
def test_catalog_and_prepare_on_the_small_demo(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo-data", str(out), "--small", "--era5-resolution", "0.1", "-q"]) == 0
    capsys.readouterr()
    cfg = load_config(out / "smcore.toml")
    assert main(["catalog", str(out / "cmip6"), "--variable", "mrsos", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert len(records) == len(cfg.models) * len(cfg.experiments)
    assert all(r["problems"] == [] for r in records)
    wd = tmp_path / "wd"
    assert (
        main(
            [
                "prepare",
                "--cmip6",
                str(out / "cmip6"),
                "--era5",
                str(out / "era5land" / "*.nc"),
                "--workdir",
                str(wd),
                "--config",
                str(out / "smcore.toml"),
            ]
        )
        == 0
    )
    data = open_prepared(wd)
    assert data.channels == [m.source_id for m in cfg.models]
    assert data.experiments == list(cfg.experiments)
    s = data.static.load()
    land = s.land_mask.values.astype(bool)
    assert land.sum() > 10000
    truth = xr.open_dataset(out / "truth" / "truth_historical.nc")["ssm"].sel(
        time=slice(str(cfg.periods.train[0]), str(cfg.periods.test[1]))
    )
    assert truth.sizes["time"] == s.sizes["time"]
    ok = land & np.isfinite(truth.values).all(axis=0)
    rmse = float(np.sqrt(np.mean((s.reference.values[:, ok] - truth.values[:, ok]) ** 2)))
    assert rmse < 0.005  # 0.1° → 0.25° bilinear of the truth, months aligned
    for exp in data.experiments:
        assert np.isfinite(data.inputs(exp).values).all()
