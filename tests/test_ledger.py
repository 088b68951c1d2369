"""vae_lib.base.ledger: tables recorded by a chapter, written atomically, read back in chapter order; every
fault in a ledger file names the file and what is wrong with it."""

import json

import pytest

from vae_lib.base.ledger import LEDGER_FORMAT, Ledger, read_ledger, read_ledger_file


def test_a_recorded_table_round_trips_and_a_repeat_replaces_it(tmp_path):
    ledger = Ledger("07_log_likelihood")
    md = ledger.table("Estimators", ["model", "error"], [["a", 0.5], ["b", "−1.00 ± 0.20"]], note="nats")
    assert md.splitlines() == ["| model | error |", "| --- | --- |", "| a | 0.5 |", "| b | −1.00 ± 0.20 |"]
    ledger.table("Estimators", ["model", "error"], [["c", 1]])                  # the cell ran again
    ledger.table("Gaps", ["model"], [["a"]])
    ledger.save(tmp_path, run="cpu, full run")
    (back, written), = read_ledger(tmp_path)
    assert [e.title for e in back.entries] == ["Estimators", "Gaps"]
    assert "| c | 1 |" in back.entries[0].markdown and back.run == "cpu, full run" and written
    assert not list(tmp_path.glob(".*.tmp"))                                    # no temporary file left behind


def test_ledgers_come_back_in_chapter_order(tmp_path):
    for name in ("11_figure3", "07_log_likelihood", "07b_where_the_bound_loses"):
        led = Ledger(name)
        led.table("t", ["a"], [[1]])
        led.save(tmp_path, run="r")
    assert [led.chapter for led, _ in read_ledger(tmp_path)] == ["07_log_likelihood", "07b_where_the_bound_loses", "11_figure3"]


def test_a_row_of_the_wrong_length_is_refused():
    with pytest.raises(ValueError, match="every row needs 2 cells"):
        Ledger("x").table("t", ["a", "b"], [[1]])


@pytest.mark.parametrize("content, message", [
    ("{not json", "is not JSON"),
    (json.dumps({"format": "other/1"}), "is not a ledger file"),
    (json.dumps({"format": LEDGER_FORMAT, "chapter": "10_figure2", "entries": [{"title": "t", "markdown": "| a |"}]}),
     "holds the ledger of chapter '10_figure2'"),
    (json.dumps({"format": LEDGER_FORMAT, "chapter": "07_x", "entries": []}), "no entries"),
    (json.dumps({"format": LEDGER_FORMAT, "chapter": "07_x", "entries": [{"title": "t"}]}), "malformed entry"),
    (json.dumps({"format": LEDGER_FORMAT, "chapter": "07_x", "entries": [{"title": "t", "markdown": "text"}]}),
     "no Markdown table"),
])
def test_a_bad_ledger_file_names_itself_and_the_fault(tmp_path, content, message):
    path = tmp_path / "07_x.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as e:
        read_ledger_file(path)
    assert "07_x.json" in str(e.value)


def test_an_empty_folder_says_how_to_fill_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="run_book.py"):
        read_ledger(tmp_path)
