import numpy as np
import pytest
import xarray as xr

from smcore.errors import InputError
from smcore.io.units import parse_units, same_units, soil_moisture_kind, to_volumetric


@pytest.mark.parametrize(
    "text", ["kg m-2", "kg/m2", "kg m**-2", "kg m^-2", "kg.m-2", "kg/m^2", "KG M-2"]
)
def test_areal_spellings(text):
    assert soil_moisture_kind(text) == "areal"


@pytest.mark.parametrize("text", ["m3 m-3", "m**3 m**-3", "m3/m3", "m^3/m^3", "1", "fraction"])
def test_volumetric_spellings(text):
    assert soil_moisture_kind(text) == "volumetric"


@pytest.mark.parametrize(
    "text", [None, "K", "mm", "kg", "m3 m-2", "kg m-2 s-1", "furlongs", "kg m-2 ??"]
)
def test_unknown_units(text):
    assert soil_moisture_kind(text) is None


def test_parse_and_compare():
    assert parse_units("kg m-2 s-1") == {"kg": 1, "m": -2, "s": -1}
    assert same_units("kg m**-2", "kg/m2")
    assert not same_units("kg m-2", "m3 m-3")
    assert parse_units("%") == {"%": 1}


def test_to_volumetric_divides_by_layer_depth():
    da = xr.DataArray(np.array([10.0, 25.0]), dims="x", name="mrsos")
    out = to_volumetric(da, "kg m-2", 100.0)
    np.testing.assert_allclose(out.values, [0.1, 0.25], rtol=1e-6)
    assert out.attrs["units"] == "m3 m-3" and out.dtype == np.float32
    np.testing.assert_allclose(
        to_volumetric(da, "kg/m2", 70.0).values, [10 / 70, 25 / 70], rtol=1e-6
    )
    np.testing.assert_allclose(
        to_volumetric(da / 100, "m**3 m**-3", 100.0).values, [0.1, 0.25], rtol=1e-6
    )
    np.testing.assert_allclose(to_volumetric(da, "%", 100.0).values, [0.1, 0.25], rtol=1e-6)


def test_to_volumetric_rejects_unknown_units_naming_the_file():
    da = xr.DataArray(np.ones(2), dims="x", name="mrsos")
    with pytest.raises(InputError, match=r"^/data/x\.nc: mrsos has unknown units 'K'"):
        to_volumetric(da, "K", 100.0, source="/data/x.nc")
    with pytest.raises(InputError, match="has no units attribute"):
        to_volumetric(da, None, 100.0, source="/data/x.nc")
