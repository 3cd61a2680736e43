"""Reading what users have on disk (CMIP6 from ESGF, ERA5-Land from the CDS) and writing atomically.

::

    from smcore.io import scan, open_era5
    datasets = scan("cmip6/", variable="mrsos")      # catalog: identity, calendar, months, problems
    ref = open_era5("era5land/")                     # swvl1(time, lat, lon) in m3 m-3, lazy
"""

from smcore.io.catalog import CMIP6Dataset, catalog_records, find_netcdf, scan
from smcore.io.cmip6 import CMIP6File, Problem, inspect_file, open_files, parse_filename
from smcore.io.era5 import ReferenceData, find_era5_files, open_era5
from smcore.io.units import parse_units, soil_moisture_kind, to_volumetric

__all__ = [
    "CMIP6Dataset",
    "CMIP6File",
    "Problem",
    "ReferenceData",
    "catalog_records",
    "find_era5_files",
    "find_netcdf",
    "inspect_file",
    "open_era5",
    "open_files",
    "parse_filename",
    "parse_units",
    "scan",
    "soil_moisture_kind",
    "to_volumetric",
]
