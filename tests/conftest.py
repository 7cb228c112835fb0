"""Test-wide settings and the fixtures that start real things (Redis, nodes)."""

from hypothesis import HealthCheck, settings

from gateway.logs import configure_logging

pytest_plugins = ["tests.support.redis_server", "tests.support.network"]

# Timings on a shared 2-core machine vary; a property test fails on its assertions,
# never on how long one example took. Speed is measured in bench/, not here.
settings.register_profile("tongban", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("tongban")

# Nodes run inside the test process: their log lines go to stderr as in production, so
# a command's stdout captured by a test holds only the command's answer.
configure_logging("INFO", cache=False)
