"""Missions as data and the file formats people already use. No I/O on the link here."""
