"""ISMN station results (``evaluation/stations.*``) for a synthetic work directory.

The stations' monthly means are the network's product at their cell plus an offset, written
through :mod:`smcore.evaluation.stations` itself, so the files have the layout of
``smcore evaluate --stations``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from smcore.evaluation.stations import (
    REFERENCE,
    Station,
    StationResult,
    qc_table,
    score_table,
    series_dataset,
)
from smcore.io.netcdf import provenance_attrs
from smcore.workdir import WorkDir

# (network, station, lat, lon, offset): places inside the synthetic China of the factories
STATIONS = (
    ("SYNTH-NCP", "NCP01", 36.8, 116.6, -0.02),
    ("SYNTH-TP", "TP01", 31.4, 91.9, 0.04),
    ("SYNTH-NE", "NE01", 45.5, 126.9, 0.0),
)


def add_stations(wd: WorkDir, experiment: str = "historical") -> list[Station]:
    """Write ``stations.csv``, ``stations_qc.csv`` and ``stations.nc`` into ``wd/evaluation``."""
    ds = xr.open_dataset(wd.product(experiment))
    ssm = ds["ssm"]
    lat, lon = ssm["lat"].values, ssm["lon"].values
    times = pd.DatetimeIndex(ssm["time"].values)
    keys = np.asarray(times.year * 12 + times.month - 1, dtype=np.int64)
    used, observed, product = [], [], []
    for network, name, la, lo, offset in STATIONS:
        i, j = int(np.abs(lat - la).argmin()), int(np.abs(lon - lo).argmin())
        values = np.asarray(ssm.isel(lat=i, lon=j).values, dtype=np.float64)
        if not np.isfinite(values).all():
            continue
        st = Station(network=network, station=name, lat=la, lon=lo, elevation=100.0,
                     sensors=["ThetaProbe 0.05-0.05 m"], files=[], depth_from=0.05,
                     depth_to=0.05, values_read=2 * keys.size, values_kept=2 * keys.size,
                     flags={"G": [2 * keys.size, 0]}, cell_lat=float(lat[i]),
                     cell_lon=float(lon[j]), months_scored=int(keys.size))
        obs = values + offset + 0.01 * np.sin(np.arange(keys.size))
        st.monthly = pd.DataFrame({"mean": obs, "days": 30, "days_in_month": 30},
                                  index=pd.Index(keys, name="month"))
        used.append(st)
        observed.append(obs)
        product.append(values)
    ds.close()
    obs = np.stack(observed, axis=1)
    values = {"CMIP6_DL": np.stack(product, axis=1),
              "ensemble_mean": np.stack(product, axis=1) + 0.03,
              REFERENCE: np.stack(product, axis=1) - 0.01}
    result = StationResult(
        score_table(used, keys, obs, values), qc_table(used, []),
        series_dataset(used, keys, obs, values, provenance_attrs("stations (test)")),
    )
    result.write(wd.evaluation)
    return used
