"""Tests of smcore.assets: offline geography (GeoJSON, DEM, land/China/Tibetan Plateau masks)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from smcore import assets
from smcore.config import Config, GridSpec
from smcore.errors import SmcoreError

CFG = Config()
TARGET = CFG.target
COARSE = CFG.coarse


def _at(da, lon: float, lat: float):
    return da.sel(lon=lon, lat=lat, method="nearest").item()


def test_assets_dir_holds_every_file():
    d = assets.assets_dir()
    for name in assets.GEOJSON_NAMES:
        assert (d / f"{name}.geojson").is_file()
    assert (d / "dem_china.nc").is_file()
    assert (d / "land_fraction.nc").is_file()
    total = sum(p.stat().st_size for p in d.iterdir() if p.is_file())
    assert total < 5e6


def test_env_override_and_missing_asset(monkeypatch, tmp_path):
    monkeypatch.setenv("SMCORE_ASSETS", str(tmp_path))
    assets._read_geojson_cached.cache_clear()
    try:
        assert assets.assets_dir() == tmp_path
        with pytest.raises(SmcoreError, match="china_boundary.geojson"):
            assets.read_geojson("china_boundary")
    finally:
        assets._read_geojson_cached.cache_clear()


@pytest.mark.parametrize("name", assets.GEOJSON_NAMES)
def test_read_geojson(name):
    gj = assets.read_geojson(name)
    assert gj["type"] == "FeatureCollection"
    assert gj["features"]
    kinds = {f["geometry"]["type"] for f in gj["features"]}
    assert kinds <= {"Polygon", "MultiPolygon", "LineString", "MultiLineString"}


def test_read_geojson_unknown_name():
    with pytest.raises(SmcoreError, match="unknown geography asset"):
        assets.read_geojson("atlantis")


def test_provinces_are_named():
    feats = assets.read_geojson("china_provinces")["features"]
    names = {f["properties"]["name"] for f in feats}
    assert len(feats) == 34
    assert {"Beijing", "Xinjiang", "Tibet", "Heilongjiang", "Hainan", "Taiwan"} <= names


def test_boundary_lines_shapes_and_extent():
    lines = assets.boundary_lines("china_boundary")
    assert lines and all(a.ndim == 2 and a.shape[1] == 2 for a in lines)
    allpts = np.concatenate(lines)
    # China spans about 73.5-135.1 E and 18.2 (Hainan) or less (islands) to 53.6 N.
    assert 73.0 < allpts[:, 0].min() < 74.5 and 134.5 < allpts[:, 0].max() < 135.5
    assert 3.0 < allpts[:, 1].min() < 18.2 and 53.0 < allpts[:, 1].max() < 54.0
    biggest = max(lines, key=len)
    np.testing.assert_allclose(biggest[0], biggest[-1])  # closed ring
    coast = np.concatenate(assets.boundary_lines("coastline"))
    assert coast[:, 0].min() >= 60 and coast[:, 0].max() <= 150
    assert len(assets.boundary_lines("china_provinces")) >= 34


def test_masks_grid_and_dtype():
    for fn in (assets.land_mask, assets.china_mask, assets.tibetan_plateau_mask):
        m = fn(TARGET)
        assert m.dims == ("lat", "lon")
        assert m.dtype == bool
        np.testing.assert_array_equal(m["lat"].values, TARGET.lat)
        np.testing.assert_array_equal(m["lon"].values, TARGET.lon)


@pytest.mark.parametrize(
    "lon, lat, land, china, tibet",
    [
        (116.4, 39.9, True, True, False),  # Beijing
        (91.1, 29.65, True, True, True),  # Lhasa
        (83.0, 39.0, True, True, False),  # Taklamakan
        (106.9, 47.9, True, False, False),  # Ulaanbaatar
        (125.0, 30.0, False, False, False),  # East China Sea
        (114.0, 19.0, False, False, False),  # South China Sea off Hainan
        (127.0, 37.5, True, False, False),  # Seoul
        (78.0, 28.0, True, False, False),  # northern India
    ],
)
def test_known_places(lon, lat, land, china, tibet):
    assert _at(assets.land_mask(TARGET), lon, lat) is land
    assert _at(assets.china_mask(TARGET), lon, lat) is china
    assert _at(assets.tibetan_plateau_mask(TARGET), lon, lat) is tibet


def test_mask_areas_are_plausible():
    china = assets.china_mask(TARGET)
    tibet = assets.tibetan_plateau_mask(TARGET)
    land = assets.land_mask(TARGET)
    # Cell areas in km² on the 0.25° grid.
    area = (np.cos(np.deg2rad(TARGET.lat))[:, None] * (0.25 * 111.32) ** 2) * np.ones(TARGET.shape)
    china_km2 = float((area * china.values).sum())
    tibet_km2 = float((area * tibet.values).sum())
    assert 9.0e6 < china_km2 < 10.0e6  # 9.6 million km² (Taiwan and islands included)
    assert 2.3e6 < tibet_km2 < 2.8e6  # 2.54 million km² (asset property "Area")
    assert bool((land | ~tibet).all())  # the plateau is land
    assert float((china & land).sum() / china.sum()) > 0.98


def test_land_fraction_lon_convention_and_globe():
    res = 2.8125
    lat_b = np.stack([np.arange(-90, 90, res), np.arange(-90, 90, res) + res], axis=1)
    lon360 = np.stack([np.arange(0, 360, res), np.arange(0, 360, res) + res], axis=1)
    lon180 = lon360 - 180.0
    f360 = assets.land_fraction(lat_b, lon360)
    f180 = assets.land_fraction(lat_b, lon180)
    assert f360.shape == (64, 128)
    half = 64  # columns of lon180 are shifted by 180° = 64 cells
    np.testing.assert_allclose(f360, np.roll(f180, -half, axis=1), atol=1e-5)
    area = np.cos(np.deg2rad(lat_b.mean(axis=1)))[:, None]
    global_frac = float((f360 * area).sum() / (area.sum() * 128))
    assert 0.27 < global_frac < 0.31  # Earth's land fraction (Antarctica included) ~0.29


def test_land_fraction_bounds():
    f = assets.land_fraction(TARGET.lat_bounds, TARGET.lon_bounds)
    assert f.min() >= 0 and f.max() <= 1
    assert ((f > 0) & (f < 1)).any()  # coasts are fractional


def test_elevation():
    elev = assets.elevation(TARGET)
    land = assets.land_mask(TARGET)
    tibet = assets.tibetan_plateau_mask(TARGET)
    assert elev.attrs["units"] == "m"
    assert not bool(elev.isnull().any())
    assert float(abs(elev.where(~land)).max()) == 0.0
    assert 3800 < float(elev.where(tibet).mean()) < 5000
    box = {"lat": slice(35, 38), "lon": slice(115, 118)}
    ncp = elev.sel(box).where(land.sel(box))
    assert float(ncp.mean()) < 200  # North China Plain
    assert float(elev.max()) > 5500
    # Cells beyond the DEM's extent (e.g. 55-58N here) still get finite values.
    north = GridSpec(lat0=55.0, lon0=100.0, res=0.5, nlat=6, nlon=10)
    assert np.isfinite(assets.elevation(north).values).all()


def test_coarse_elevation_is_block_mean():
    fine = assets.elevation(TARGET).values
    coarse = assets.elevation(COARSE).values
    cland = assets.land_mask(COARSE).values
    blocks = fine.reshape(18, 8, 33, 8).mean(axis=(1, 3))
    # Inland (fully land) coarse cells: area mean of the DEM = mean of the fine area means.
    inland = assets.land_mask(TARGET).values.reshape(18, 8, 33, 8).all(axis=(1, 3)) & cland
    assert inland.sum() > 300
    np.testing.assert_allclose(coarse[inland], blocks[inland], rtol=0.02, atol=15)


def test_masks_are_fast_and_cached():
    grid = GridSpec(lat0=18.125, lon0=71.125, res=0.25, nlat=144, nlon=264)  # not cached yet
    t0 = time.perf_counter()
    assets.land_mask(grid)
    assets.china_mask(grid)
    assets.tibetan_plateau_mask(grid)
    assert time.perf_counter() - t0 < 5.0  # < 1 s on a quiet core; CI machines are shared
    t0 = time.perf_counter()
    m = assets.china_mask(grid)
    assert time.perf_counter() - t0 < 0.05
    m.values[:] = False  # callers get copies: the cache is not modified
    assert bool(assets.china_mask(grid).any())
