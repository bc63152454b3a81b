"""envprobe: environment readiness checks for on-site enterprise software deployments."""

__version__ = "0.1.0"
