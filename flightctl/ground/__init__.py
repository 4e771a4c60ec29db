"""The ground side that ships with flightctl: broker accounts, dispatch, registry, status relay, tracking page.

Customer data lives here and only here; nothing onboard imports this package.
"""
