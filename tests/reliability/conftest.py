"""Reliability tests share the integration tests' embedded server and demo catalog."""

import os

from hypothesis import HealthCheck, settings

from tests.integration.conftest import (  # noqa: F401 - fixtures, found by name
    catalog_photo,
    dashscope_env,
    demo_catalog,
    embedded_server,
)

# Fuzzing is bounded: about fifteen seconds in CI, so that the suite stays under 3 minutes on
# the slowest supported Python; HYPOTHESIS_PROFILE=long for a deeper run.
settings.register_profile(
    "ci",
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "long",
    max_examples=20_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
