"""Train tiny YNets with today's code (one per scaling), save checkpoints and their predictions."""
import shutil
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, "tests")
import xarray as xr

from smcore.train.loop import train
from smcore.train.predict import predict
from tests.factories.ynet import make_prepared, tiny_config

out = Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
for name, kw in {
    "anomaly_forced": dict(input_norm="anomaly", target_norm="anomaly", forced_window_years=3),
    "local": dict(input_norm="local", target_norm="local", forced_window_years=0),
    "standard": dict(input_norm="standard", target_norm="standard", forced_window_years=0),
}.items():
    cfg = tiny_config(epochs=1, features=4, depth=2, **kw)
    root = out / f"wd_{name}"
    shutil.rmtree(root, ignore_errors=True)
    wd, cfg = make_prepared(root, cfg, seed=0)
    train(cfg, wd, progress=False)
    paths = predict(cfg, wd, progress=False)
    shutil.copy(wd.checkpoint_best, out / f"{name}.pt")
    for p in paths:
        exp = p.stem.split("_")[-1]
        v = xr.open_dataset(p)["ssm"].values
        np.save(out / f"{name}_{exp}.npy", v)
    print(name, {p.name: p.stat().st_size for p in out.glob(f"{name}*")})
