"""haicap: conformance and cutover-surge load testing for Viet Nam's two-level local government."""

__version__ = "0.1.0"
