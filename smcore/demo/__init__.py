"""The embedded synthetic demo dataset (``smcore demo-data``).

- :mod:`smcore.demo.truth`: the synthetic truth built on real geography (pure numpy);
- :mod:`smcore.demo.models`: synthetic ESMs that see the truth through their own grids;
- :mod:`smcore.demo.layout`: native grids, file splits, calendars, DRS versions;
- :mod:`smcore.demo.writers`: CMIP6 (ESGF), ERA5-Land (new CDS) and truth writers;
- :mod:`smcore.demo.noise`, :mod:`smcore.demo.regrid`: random fields and regridding helpers;
- :mod:`smcore.demo.generate`: orchestration (:func:`generate_demo`).
"""

from smcore.demo.generate import DemoOptions, DemoResult, demo_config, generate_demo

__all__ = ["DemoOptions", "DemoResult", "demo_config", "generate_demo"]
