"""bench/'s result objects: the JSON every benchmark prints with --json."""
import io
import json

import numpy as np

from bench.common import Result, print_json, ratio


def test_results_computed_with_numpy_print_as_plain_json():
    value, peer = np.float64(144.2), np.float32(100.5)
    results = [Result("search p95", value, "ms", "idle", peer, ratio(value, peer), "<= 1.5x peer",
                      value <= 1.5 * peer),
               Result("recall", np.float64(0.94), "", "exact", 1.0, None, ">= 0.99", np.bool_(False))]
    out = io.StringIO()
    print_json(results, file=out)
    got = json.loads(out.getvalue())
    assert [set(r) for r in got] == [{"name", "value", "unit", "peer", "peer_value", "ratio", "target", "ok"}] * 2
    assert got[0]["ok"] is True and got[1]["ok"] is False and got[1]["ratio"] is None
    assert abs(got[0]["ratio"] - 144.2 / 100.5) < 1e-5 and type(got[0]["value"]) is float
