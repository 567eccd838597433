"""Citizen-journey scenarios (YAML) and the engine that runs their steps, for conformance and load alike."""
