"""Example per-purpose policies (YAML) and the policy JSON Schema, shipped as package data."""
