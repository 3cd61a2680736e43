"""A small synthetic ISMN download (``OUT/ismn/``) for the station path of the demo.

A few stations, each sampled from the demo's truth at its 0.25° cell with a sensor offset,
day-to-day noise, missing days and ISMN quality flags, written exactly as ISMN delivers
them (:mod:`smcore.io.ismn`): ``<network>/<station>/`` folders with one ``*.stm`` file per
sensor, in the Header+values format or the CEOP format, and the station's
``*_static_variables.csv``. The stations exercise every rule of
:mod:`smcore.evaluation.stations`: a sensor below 0.1 m, two sensors at one station, organic
soil that trips the saturation check (``C03``), spikes (``D06``), a station with too many
missing days for any complete month, one outside China and one off the grid. **Their scores
mean nothing**: the truth is synthetic and the "sensors" are the truth plus noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from smcore.config import GridSpec
from smcore.demo.noise import rng_for

__all__ = ["DemoStation", "DEMO_STATIONS", "write_ismn", "header_values_text", "ceop_text"]


@dataclass(frozen=True)
class DemoStation:
    """One synthetic station: where, its sensors ``(instrument, depth_from, depth_to)``."""

    network: str
    station: str
    lat: float
    lon: float
    elevation: float
    sensors: tuple[tuple[str, float, float], ...]
    format: str = "header_values"
    offset: float = 0.0
    """Sensor minus truth (m3 m-3): a point at ~5 cm is not a 0–7 cm grid-cell mean."""
    missing_days: float = 0.05
    """Share of days without any value."""
    saturation: float | None = None
    """Values above this are flagged ``C03`` (above the soil's saturation point)."""


DEMO_STATIONS: tuple[DemoStation, ...] = (
    DemoStation("SYNTH-TP", "TP01", 31.37, 91.90, 4509.0,
                (("5TE", 0.05, 0.05), ("5TE", 0.20, 0.20)), offset=0.04, saturation=0.30),
    DemoStation("SYNTH-TP", "TP02", 33.91, 102.16, 3430.0, (("EC-TM", 0.0, 0.05),),
                format="ceop", offset=0.02),
    DemoStation("SYNTH-NCP", "NCP01", 36.83, 116.57, 23.0,
                (("ThetaProbe-ML2X", 0.05, 0.05), ("ThetaProbe-ML2X-B", 0.05, 0.05)),
                offset=-0.02),
    DemoStation("SYNTH-NE", "NE01", 47.45, 126.92, 240.0, (("Hydraprobe", 0.0, 0.10),)),
    DemoStation("SYNTH-NW", "NW01", 38.93, 100.45, 1556.0, (("CS616", 0.0, 0.05),),
                missing_days=0.6),
    DemoStation("SYNTH-MN", "MN01", 47.90, 106.90, 1350.0, (("EC-5", 0.05, 0.05),)),
    DemoStation("SYNTH-JP", "JP01", 43.06, 141.35, 17.0, (("TDR", 0.05, 0.05),)),
)
"""The demo's stations (synthetic networks; the places are only plausible)."""

HOURS = (0, 12)
"""UTC hours of the values of each day."""

README = """SYNTHETIC ISMN-FORMAT DATA written by 'smcore demo-data'.

These are NOT measurements of the International Soil Moisture Network (ISMN,
https://ismn.earth): every value is the demo's synthetic truth at the station's 0.25 degree
cell plus a sensor offset and noise. The files follow ISMN's formats (Header+values and
CEOP) so that `smcore evaluate --stations` reads them as it reads a real download.
Scores against these stations say nothing about any product.
"""

_STATIC_HEADER = (
    "quantity_name;unit;depth_from[m];depth_to[m];value;description;quantity_source_name;"
    "quantity_source_description;quantity_source_provider;quantity_source_version;"
    "quantity_source_resolution;quantity_source_timerange;quantity_source_url"
)


def _name(st: DemoStation, instrument: str, d0: float, d1: float, t0: str, t1: str) -> str:
    return f"{st.network}_{st.network}_{st.station}_sm_{d0:.6f}_{d1:.6f}_{instrument}_{t0}_{t1}.stm"


def header_values_text(
    st: DemoStation, d0: float, d1: float, instrument: str,
    times: pd.DatetimeIndex, values: np.ndarray, flags: Sequence[str],
) -> str:
    """A Header+values file: the header line, then ``date time value flag provider_flag``."""
    lines = [
        f"{st.network:<10} {st.network:<15} {st.station:<15} {st.lat:10.5f} {st.lon:11.5f} "
        f"{st.elevation:8.2f} {d0:9.4f} {d1:9.4f}  {instrument}"
    ]
    lines += [f"{t:%Y/%m/%d %H:%M} {v:9.4f} {f} M" for t, v, f in zip(times, values, flags,
                                                                        strict=True)]
    return "\n".join(lines) + "\n"


def ceop_text(
    st: DemoStation, d0: float, d1: float,
    times: pd.DatetimeIndex, values: np.ndarray, flags: Sequence[str],
) -> str:
    """A CEOP file: one line per value.

    Each line: UTC nominal and actual date/time, CSE, network, station, lat, lon, elevation,
    depth from, depth to (m), value (m3 m-3), ISMN flag, provider flag.
    """
    head = (f"{st.network:<10} {st.network:<15} {st.station:<15} {st.lat:10.5f} "
            f"{st.lon:11.5f} {st.elevation:8.2f} {d0:9.4f} {d1:9.4f}")
    return "".join(
        f"{t:%Y/%m/%d %H:%M} {t:%Y/%m/%d %H:%M} {head} {v:9.4f} {f} M\n"
        for t, v, f in zip(times, values, flags, strict=True)
    )


def _static_csv(st: DemoStation) -> str:
    rows = [
        _STATIC_HEADER,
        "land cover classification;;0.00;0.00;130;Grassland;CCI_landcover_2010;;ESA;;;;",
        "climate classification;;0.00;0.00;Dwc;Dwc;koeppen_geiger_2007;;;;;;",
        "saturation;m^3*m^-3;0.00;0.30;0.45;saturation;HWSD;;FAO;;;;",
        "clay fraction;% weight;0.00;0.30;20;clay fraction;HWSD;;FAO;;;;",
        "sand fraction;% weight;0.00;0.30;40;sand fraction;HWSD;;FAO;;;;",
        "silt fraction;% weight;0.00;0.30;40;silt fraction;HWSD;;FAO;;;;",
        "organic carbon;% weight;0.00;0.30;1.5;organic carbon;HWSD;;FAO;;;;",
    ]
    return "\n".join(rows) + "\n"


def _daily_truth(monthly: np.ndarray, y0: int, y1: int) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """Daily values linearly interpolated between mid-months of a monthly series."""
    months = pd.date_range(f"{y0}-01-01", f"{y1}-12-01", freq="MS")
    mid = months + (months + pd.offsets.MonthBegin(1) - months) / 2
    days = pd.date_range(f"{y0}-01-01", f"{y1}-12-31", freq="D")
    x = (mid - mid[0]).total_seconds().to_numpy()
    xi = (days - mid[0]).total_seconds().to_numpy()
    return days, np.interp(xi, x, np.asarray(monthly, dtype=np.float64))


def _cell(lat: float, lon: float, grid: GridSpec) -> tuple[int, int] | None:
    i = int(np.floor((lat - (grid.lat0 - grid.res / 2)) / grid.res))
    j = int(np.floor((lon - (grid.lon0 - grid.res / 2)) / grid.res))
    if 0 <= i < grid.nlat and 0 <= j < grid.nlon:
        return i, j
    return None


def write_ismn(
    folder: Path,
    truth: np.ndarray,
    years: tuple[int, int],
    grid: GridSpec,
    seed: int,
    period: tuple[int, int],
    stations: Sequence[DemoStation] = DEMO_STATIONS,
) -> list[Path]:
    """Write the synthetic ISMN download into ``folder``; returns the ``*.stm`` files.

    ``truth`` is the monthly truth ``(time, lat, lon)`` on ``grid`` for the years ``years``;
    the stations cover the years ``period`` (the demo's test years). A station off the grid
    or over the sea samples the nearest finite value of its row of the truth's domain, so it
    has data to be skipped for.
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Readme.txt").write_text(README)
    y0, _ = years
    p0, p1 = period
    sl = slice((p0 - y0) * 12, (p1 - y0 + 1) * 12)
    t0, t1 = f"{p0}0101", f"{p1}1231"
    written: list[Path] = []
    for st in stations:
        rng = rng_for(seed, "ismn", st.network, st.station)
        cell = _cell(st.lat, st.lon, grid)
        if cell is not None and np.isfinite(truth[sl, cell[0], cell[1]]).all():
            monthly = truth[sl, cell[0], cell[1]]
        else:  # outside China or off the grid: some plausible soil moisture all the same
            monthly = 0.2 + 0.05 * np.sin(2 * np.pi * np.arange(sl.stop - sl.start) / 12.0)
        days, daily = _daily_truth(monthly, p0, p1)
        keep_day = rng.random(days.size) >= st.missing_days
        station_dir = folder / st.network / st.station
        station_dir.mkdir(parents=True, exist_ok=True)
        (station_dir / f"{st.network}_{st.network}_{st.station}_static_variables.csv").write_text(
            _static_csv(st)
        )
        for instrument, d0, d1 in st.sensors:
            deeper = 0.5 * (d0 + d1) > 0.1
            noise = 0.012 * rng.standard_normal((days.size, len(HOURS)))
            base = daily[:, None] + st.offset + noise + (0.03 if deeper else 0.0)
            times = pd.DatetimeIndex(
                [d + pd.Timedelta(hours=h) for d in days[keep_day] for h in HOURS]
            )
            values = np.clip(base[keep_day].ravel(), 0.02, 0.6)
            flags = np.full(values.size, "G", dtype=object)
            spikes = rng.random(values.size) < 0.01
            values[spikes] = np.minimum(values[spikes] + 0.15, 0.6)
            flags[spikes] = "D06"
            if st.saturation is not None:
                wet = values > st.saturation
                flags[wet] = np.where(flags[wet] == "D06", "C03,D06", "C03")
            if st.format == "ceop":
                text = ceop_text(st, d0, d1, times, values, list(flags))
            else:
                text = header_values_text(st, d0, d1, instrument, times, values, list(flags))
            path = station_dir / _name(st, instrument, d0, d1, t0, t1)
            path.write_text(text)
            written.append(path)
    return written
