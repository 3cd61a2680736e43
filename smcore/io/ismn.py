"""In-situ soil moisture as the International Soil Moisture Network (ISMN) delivers it.

An ISMN download (a folder, or the ``.zip`` as downloaded) holds one folder per network and
station and one ``*.stm`` file per sensor, named
``<CSE>_<network>_<station>_<variable>_<depth_from>_<depth_to>_<sensor>_<start>_<end>.stm``
(depths in metres, variable ``sm`` for soil moisture in m3 m-3), in one of two formats:

- *Header+values*: a first line ``CSE network station lat lon elevation depth_from depth_to
  sensor``, then ``YYYY/MM/DD HH:MM value ISMN_flag provider_flag`` lines;
- *CEOP* (separate files): one line per value, ``YYYY/MM/DD HH:MM YYYY/MM/DD HH:MM CSE
  network station lat lon elevation depth_from depth_to value ISMN_flag provider_flag``.

Times are UTC; ISMN quality flags are ``G`` (good), ``U`` (unknown), ``M`` (missing),
``C01``–``C03`` (below/above the plausible range, above the soil's saturation point) and
``D01``–``D10`` (dubious: frozen soil, spikes, plateaus …); one value may carry several,
separated by commas. The files are read by the ``ismn`` package (TU Wien), the reader made
for these downloads: :func:`read_ismn` returns every soil-moisture sensor with its metadata
and values, and lists the ``*.stm`` files it could not read.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from smcore.errors import InputError

__all__ = ["SensorSeries", "IsmnData", "read_ismn", "SOIL_MOISTURE"]

SOIL_MOISTURE = "soil_moisture"
"""The ISMN variable name of ``sm`` files (volumetric soil moisture, m3 m-3)."""


@dataclass
class SensorSeries:
    """One ISMN sensor: where, how deep, which instrument, and its values.

    ``data`` has a UTC ``DatetimeIndex`` and the columns ``value`` (m3 m-3, float) and
    ``flag`` (the ISMN quality flag text, e.g. ``G`` or ``C03,D06``).
    """

    network: str
    station: str
    lat: float
    lon: float
    elevation: float
    depth_from: float
    depth_to: float
    instrument: str
    file: str
    format: str
    """``header_values`` or ``ceop`` (CEOP separate files)."""
    data: pd.DataFrame = field(repr=False)


@dataclass
class IsmnData:
    """What :func:`read_ismn` found: soil-moisture sensors and the files it could not read."""

    root: Path
    sensors: list[SensorSeries]
    unreadable: list[str] = field(default_factory=list)
    """``*.stm`` files (relative to ``root``) that are not readable ISMN files."""


def _stm_files(root: Path) -> list[str] | None:
    """The ``*.stm`` files below ``root`` (relative paths), ``None`` for a zip archive."""
    if root.is_file():
        return None
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.stm") if p.is_file())


def read_ismn(path: str | Path) -> IsmnData:
    """Read every soil-moisture sensor of an ISMN download (folder or ``.zip``).

    Raises :class:`InputError` (one line naming ``path``) when it does not exist, holds no
    ``*.stm`` file or cannot be read at all; single unreadable files are listed in
    :attr:`IsmnData.unreadable` instead. Nothing is written into ``path``: the ``ismn``
    package's metadata cache goes to a temporary folder.
    """
    root = Path(path).expanduser()
    if not root.exists():
        raise InputError(root, "no such ISMN folder")
    if root.is_file() and root.suffix.lower() != ".zip":
        raise InputError(root, "not an ISMN download: expected a folder or a .zip archive")
    listed = _stm_files(root)
    if listed is not None and not listed:
        raise InputError(root, "no ISMN data files (*.stm) here")
    try:
        from ismn.interface import ISMN_Interface
    except ImportError as exc:  # pragma: no cover - a dependency of smcore
        raise InputError(root, f"reading ISMN data needs the ismn package ({exc})") from exc
    sensors: list[SensorSeries] = []
    read_files: set[str] = set()
    loggers = [logging.getLogger(n) for n in ("ismn", "ismn_meta_collector", "root")]
    levels = [lg.level for lg in loggers]
    with tempfile.TemporaryDirectory(prefix="smcore-ismn-") as meta, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for lg in loggers:
            lg.setLevel(logging.CRITICAL)
        sink = io.StringIO()
        try:
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                iface = ISMN_Interface(str(root), meta_path=meta, temp_root=meta, parallel=False)
                for net in iface.collection.iter_networks():
                    for station in net.iter_stations():
                        for sensor in station.iter_sensors():
                            fh = sensor.filehandler
                            rel = Path(str(fh.file_path)).as_posix()
                            read_files.add(rel)
                            if sensor.variable != SOIL_MOISTURE:
                                continue
                            sensors.append(_series(net.name, station, sensor, rel))
        except InputError:
            raise
        except Exception as exc:  # noqa: BLE001 - the reader refused the whole download
            text = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise InputError(root, f"not readable as an ISMN download: {text[:200]}") from exc
        finally:
            for lg, level in zip(loggers, levels, strict=True):
                lg.setLevel(level)
    unreadable = [f for f in (listed or []) if f not in read_files]
    return IsmnData(root=root, sensors=sensors, unreadable=unreadable)


def _series(network: str, station: object, sensor: object, rel: str) -> SensorSeries:
    """One sensor's metadata and values as a :class:`SensorSeries`."""
    raw = sensor.read_data()  # type: ignore[attr-defined]
    var = SOIL_MOISTURE
    data = pd.DataFrame(
        {
            "value": pd.to_numeric(raw[var], errors="coerce").astype("float64").to_numpy(),
            "flag": raw[f"{var}_flag"].astype(str).str.strip().to_numpy(),
        },
        index=pd.DatetimeIndex(raw.index, name="time"),
    )
    depth = sensor.depth  # type: ignore[attr-defined]
    fh = sensor.filehandler  # type: ignore[attr-defined]
    meta = fh.metadata
    elevation = _meta_float(meta, "elevation")
    return SensorSeries(
        network=str(network),
        station=str(station.name),  # type: ignore[attr-defined]
        lat=float(station.lat),  # type: ignore[attr-defined]
        lon=float(station.lon),  # type: ignore[attr-defined]
        elevation=elevation,
        depth_from=float(depth.start),
        depth_to=float(depth.end),
        instrument=str(sensor.instrument),  # type: ignore[attr-defined]
        file=rel,
        format="ceop" if fh.file_type == "ceop_sep" else str(fh.file_type),
        data=data,
    )


def _meta_float(meta: object, name: str) -> float:
    try:
        return float(meta[name].val)  # type: ignore[index]
    except (KeyError, TypeError, ValueError, AttributeError):
        return float(np.nan)
