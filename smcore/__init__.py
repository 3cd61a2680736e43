"""smcore: merge and downscale CMIP6 soil moisture with YNet (Feng et al. 2022, and beyond)."""

from smcore.config import Config, load_config

__version__ = "0.1.0"

__all__ = ["Config", "load_config", "__version__"]
