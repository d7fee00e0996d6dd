"""Controllers as pure decisions over a store snapshot (see docs/controllers.md):
``decide(snapshot, now) -> [Action]``; netlab/controllers/runner.py applies them to a store."""
