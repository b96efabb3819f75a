"""The SDK as a public API: what is public is listed (docs/sdk-api.md, generated, held current by
tests/test_docs_current.py), every listed name is exported, and a deprecation warns at run time."""

from __future__ import annotations

import importlib
import warnings

import pytest

from launchrelay.docsgen import PUBLIC_API
from launchrelay.errors import LaunchRelayDeprecationWarning, deprecated


@pytest.mark.parametrize("module_name", sorted(PUBLIC_API))
def test_every_public_name_is_exported(module_name: str) -> None:
    module = importlib.import_module(module_name)
    exported = getattr(module, "__all__", None)
    for name in PUBLIC_API[module_name]:
        assert hasattr(module, name), f"{module_name}.{name} is listed as public and does not exist"
        if exported is not None:
            assert name in exported, f"{module_name}.{name} is public but not in __all__"


def test_a_deprecation_warns_where_the_caller_uses_it() -> None:
    """The warning names the release that deprecated it, the one that removes it and what to use, and points at
    the caller's line (not the SDK's)."""

    def old_name() -> int:
        deprecated("Publisher.old_name()", since="0.2.0", removed_in="0.3.0", instead="Publisher.new_name()")
        return 1

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert old_name() == 1
    (w,) = caught
    assert issubclass(w.category, LaunchRelayDeprecationWarning) and issubclass(w.category, DeprecationWarning)
    assert "since launchrelay 0.2.0 and goes in 0.3.0: use Publisher.new_name()" in str(w.message)
    assert w.filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error", LaunchRelayDeprecationWarning)
        with pytest.raises(LaunchRelayDeprecationWarning):
            old_name()
