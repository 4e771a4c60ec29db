"""The engineer's harness: ArduPilot SITL instances, scenarios and fault-injecting links. Never flown."""
