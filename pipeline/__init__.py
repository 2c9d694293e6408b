"""newstag: tag news articles by region and by theme."""

__version__ = "0.1.0"

DEFAULT_CONFIG = "configs/world.yaml"
