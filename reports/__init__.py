"""Reports: readiness report, capacity report, evidence bundle."""
