"""The embedded sandbox: the national counterpart and a correct reference province with named faults.

Start both with :class:`haicap.sandbox.runner.Sandbox` (``Sandbox.start(faults=...)``) or ``haicap sandbox``.
"""
