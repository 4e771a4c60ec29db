"""The MAVLink link: transports, framing and the one reader that routes every message."""
