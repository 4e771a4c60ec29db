"""flightctl: the onboard flight and delivery controller for parcel-delivery drones."""

__version__ = "0.1.0"
