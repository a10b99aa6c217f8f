import gc

import pytest

from connector.sync.garbage import collection_paused


@pytest.mark.parametrize("enabled", [True, False])
def test_the_collector_waits_inside_and_comes_back_as_it_was(enabled: bool) -> None:
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        with collection_paused():
            assert gc.isenabled() is False
        assert gc.isenabled() is enabled
        with pytest.raises(RuntimeError), collection_paused():
            raise RuntimeError("a batch failed")
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()
