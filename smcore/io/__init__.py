"""Reading what users have on disk (CMIP6 from ESGF, ERA5-Land from the CDS) and writing atomically.

::

    from smcore.io import scan, open_era5
    datasets = scan("cmip6/", variable="mrsos")      # catalog: identity, calendar, months, problems
    ref = open_era5("era5land/")                     # swvl1(time, lat, lon) in m3 m-3, lazy
"""

from smcore._lazy import lazy_exports

_EXPORTS = {
    "catalog": ["CMIP6Dataset", "catalog_records", "find_netcdf", "scan"],
    "cmip6": ["CMIP6File", "Problem", "inspect_file", "open_files", "parse_filename"],
    "era5": ["ReferenceData", "find_era5_files", "open_era5"],
    "units": ["parse_units", "soil_moisture_kind", "to_volumetric"],
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(n for names in _EXPORTS.values() for n in names)
