"""netlab for test suites: the pytest plugin (netlab/testing/plugin.py), registered as the `netlab`
pytest11 entry point, so installing netlab gives a suite its fixtures and markers."""
