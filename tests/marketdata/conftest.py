"""The simulated exchange's fixtures (tests/venues/sim/conftest.py), shared here."""

from tests.venues.sim.conftest import sim, sim_server  # noqa: F401 - fixtures
