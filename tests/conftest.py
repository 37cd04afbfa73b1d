"""Shared test settings: offline, quiet, few threads (CI has 2 cores)."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# Few threads for torch without importing it here (conftest imports no heavy runtime): torch reads this
# at its first import; a bench worker sets its own thread count.
os.environ.setdefault("OMP_NUM_THREADS", str(min(2, os.cpu_count() or 1)))


from tests.shared_bundles import bert_tiny_qa_bundles  # noqa: E402,F401 - a session fixture


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def kotlin_build():
    """All of the Android demo's Kotlin compiled once per session (tests/kotlin_build.py): the app
    layer against the pinned API stubs, qa-core with its tests and the fake phone's JVM main."""
    from tests import kotlin_build as kb

    why = kb.missing_tools()
    if why:
        pytest.skip(why)
    try:
        return kb.compile_all()
    except kb.CompileError as e:
        pytest.fail(f"the Android demo's Kotlin does not compile (app layer against tests/android_stubs):\n{str(e)[-4000:]}",
                    pytrace=False)
