"""Reference servers ("floors") measured beside Telemetron on the same granian set-up."""
