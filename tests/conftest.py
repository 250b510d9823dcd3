"""Test configuration: hypothesis profiles, picked by the environment.

``NNET_HYPOTHESIS_PROFILE`` names the profile: ``dev`` (the default on a workstation, quick),
``ci`` (the default when ``CI`` is set; .ci/run sets it: derandomized, so a landing is judged on the
same examples every time and a flaky example cannot turn it red), or ``intense`` (many examples, for a
bug hunt). No profile has a deadline: the machines are shared and timings are noisy, and tests never
assert on time.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_common = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile("dev", max_examples=25, **_common)
settings.register_profile("ci", max_examples=40, derandomize=True, print_blob=True, **_common)
settings.register_profile("intense", max_examples=1000, **_common)
settings.load_profile(
    os.environ.get("NNET_HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
)
