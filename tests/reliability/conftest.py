"""Reliability tests share the integration tests' embedded server and demo catalog."""

import os

from hypothesis import HealthCheck, settings

from tests.integration.conftest import (  # noqa: F401 - fixtures, found by name
    catalog_photo,
    dashscope_env,
    demo_catalog,
    embedded_server,
)

# Fuzzing is bounded: about half a minute in CI; HYPOTHESIS_PROFILE=long for a deeper run.
settings.register_profile(
    "ci",
    max_examples=400,
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
