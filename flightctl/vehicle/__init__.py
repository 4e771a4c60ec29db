"""The vehicle and its MAVLink sub-protocols, one module each."""
