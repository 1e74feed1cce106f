"""Omni: a self-hosted omnichannel contact center with one unified queue."""

__version__ = "0.1.0"
