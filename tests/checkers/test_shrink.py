"""The first anomalous operation is the earliest completion after which the history is illegal."""

from faultbed.checkers.linearizable import check_history
from faultbed.checkers.shrink import cut, first_anomaly


def _op(events, process, f, key, value, start, end, out=None, type_="ok"):
    events.append({"index": len(events), "time": start, "type": "invoke", "process": process, "f": f,
                   "key": key, "value": value})
    events.append({"index": len(events), "time": end, "type": type_, "process": process, "f": f,
                   "key": key, "value": out if f == "read" else value})


def test_first_anomaly_is_the_stale_read_not_a_later_one(tmp_path):
    ms = 1_000_000
    events: list[dict] = []
    _op(events, 0, "write", "a", 1, 10 * ms, 20 * ms)
    _op(events, 1, "read", "a", None, 30 * ms, 40 * ms, out=1)
    _op(events, 0, "write", "a", 2, 50 * ms, 60 * ms)
    _op(events, 1, "read", "a", None, 70 * ms, 80 * ms, out=1)   # stale: first anomaly, at 80 ms
    _op(events, 2, "read", "b", None, 85 * ms, 86 * ms, out=None)
    _op(events, 1, "read", "a", None, 90 * ms, 100 * ms, out=1)  # stale again, later
    events.sort(key=lambda e: e["time"])
    viz = tmp_path / "lin.html"
    result = check_history(events, model="kv", visualize=str(viz))
    assert result.valid is False
    first = result.details["first_anomaly"]
    assert (first["f"], first["key"], first["output"]) == ("read", "a", 1)
    assert result.details["first_anomaly_ms"] == 70.0  # 80 ms, counted from the first invocation at 10 ms
    assert first["prefix_ops"] == 4
    assert viz.exists() and (tmp_path / "lin-full.html").exists()
    assert result.details["visualization_full"].endswith("lin-full.html")


def test_valid_history_keeps_one_picture_under_the_asked_name(tmp_path):
    events: list[dict] = []
    _op(events, 0, "write", "a", 1, 10, 20)
    _op(events, 1, "read", "a", None, 30, 40, out=1)
    result = check_history(events, model="kv", visualize=str(tmp_path / "lin.html"), always_visualize=True)
    assert result.valid is True and "first_anomaly" not in result.details
    assert (tmp_path / "lin.html").exists() and not (tmp_path / "lin-full.html").exists()


def test_cut_turns_later_completions_into_pending_operations():
    rows = [(0, 10, 20, "write", "a", 1, 1, ""), (1, 15, 50, "read", "a", None, 1, ""), (2, 60, 70, "read", "a", None, 1, "")]
    assert cut(rows, 30) == [rows[0], (1, 15, None, "read", "a", None, None, "")]


def test_a_probe_that_cannot_say_ends_the_search_with_an_anomaly_not_proven_first():
    rows = [(i, 10 * i, 10 * i + 5, "read", "a", None, 1, "") for i in range(16)]  # sequential: completions 5..155
    asked: list[int] = []

    def cannot_say(prefix):
        asked.append(len(prefix))
        return "unknown"

    found = first_anomaly(rows, "kv", "a", cannot_say, illegal_at=rows[9][2])  # an impossible read's completion
    assert found is not None and found.row == rows[9] and not found.proven_first
    assert asked == [5]  # one probe, of the cut at rows[4]'s completion, and the search ended there
    assert found.to_json(0)["proven_first"] is False

    def illegal_from_row_6(prefix):
        return not any(row[2] == rows[6][2] for row in prefix)  # legal until row 6 completes

    found = first_anomaly(rows, "kv", "a", illegal_from_row_6, illegal_at=rows[9][2])
    assert found is not None and found.row == rows[6] and found.proven_first and len(found.prefix) == 7


def test_an_anomaly_at_the_very_end_is_drawn_once_and_both_pictures_are_the_same(tmp_path):
    events: list[dict] = []
    _op(events, 0, "write", "a", 1, 10, 20)
    _op(events, 1, "read", "a", None, 30, 40, out=1)
    _op(events, 0, "write", "a", 2, 50, 60)
    _op(events, 1, "read", "a", None, 70, 80, out=1)  # stale, and the history's last completion
    viz = tmp_path / "lin.html"
    result = check_history(events, model="kv", visualize=str(viz))
    assert result.valid is False and result.details["first_anomaly"]["prefix_ops"] == 4
    assert result.details["visualization"] == str(viz)
    assert viz.read_bytes() == (tmp_path / "lin-full.html").read_bytes()
