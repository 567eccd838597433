"""The conformance suite: checks by readiness criterion, the pytest plugin and `haicap certify`."""
