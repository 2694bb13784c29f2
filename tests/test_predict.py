"""ner-predict: entity decoding and offsets (unit), and tagging with a trained demo run (slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ner.tools.predict import STDIN_HINT, _lines, decode_entities, format_text, main
from ner.tools.words import split_words

# the session's finished run (conftest.py run_dir): built once, on one worker (--dist loadgroup)
pytestmark = pytest.mark.xdist_group("run_dir")


def entity(typ, text, start_word, end_word, start, end) -> dict:
    return dict(type=typ, text=text, start_word=start_word, end_word=end_word, start=start, end=end)


def test_decode_hebrew_entities_with_prefixes_and_punctuation():
    line = "דוד בן-גוריון נולד בפלונסק, ועבר לתל אביב."
    words = split_words(line)
    assert [w for w, _, _ in words] == [
        "דוד",
        "בן-גוריון",
        "נולד",
        "בפלונסק",
        ",",
        "ועבר",
        "לתל",
        "אביב",
        ".",
    ]
    tags = ["B-PER", "I-PER", "O", "B-LOC", "O", "O", "B-LOC", "I-LOC", "O"]
    assert decode_entities(line, words, tags) == [
        entity("PER", "דוד בן-גוריון", 0, 2, 0, 13),
        entity("LOC", "בפלונסק", 3, 4, 19, 26),
        entity("LOC", "לתל אביב", 6, 8, 33, 41),
    ]


def test_decode_follows_seqeval_default_mode():
    """An I- after O or after another type starts an entity; B- after B- starts a new one."""
    line = "  Visit New  York with Acme Corp Ltd John Smith  "
    words = split_words(line)
    tags = ["O", "I-LOC", "I-LOC", "O", "B-ORG", "I-ORG", "I-PER", "B-PER", "B-PER"]
    got = decode_entities(line, words, tags)
    assert got == [
        entity("LOC", "New  York", 1, 3, 8, 17),
        entity("ORG", "Acme Corp", 4, 6, 23, 32),
        entity("PER", "Ltd", 6, 7, 33, 36),
        entity("PER", "John", 7, 8, 37, 41),
        entity("PER", "Smith", 8, 9, 42, 47),
    ]
    for e in got:
        assert line[e["start"] : e["end"]] == e["text"]


def test_decode_entity_at_the_end_and_no_entities():
    line = 'הם גרים בצה"ל'
    words = split_words(line)
    assert decode_entities(line, words, ["O", "O", "B-ORG"]) == [
        entity("ORG", 'בצה"ל', 2, 3, 8, 13)
    ]
    assert decode_entities(line, words, ["O", "O", "O"]) == []
    assert decode_entities("", [], []) == []


def test_decode_entities_with_marks_inside_and_around_words():
    """A mark inside a word stays in the entity's text; marks at its edges are left out."""
    line = "\u200fדוד בן\u200f-גוריון נולד בירושל\u200fים\u200f. 🇮🇱"
    words = split_words(line)
    assert [w for w, _, _ in words] == [
        "דוד",
        "בן\u200f-גוריון",
        "נולד",
        "בירושל\u200fים",
        ".",
        "🇮🇱",
    ]
    got = decode_entities(line, words, ["B-PER", "I-PER", "O", "B-LOC", "O", "O"])
    assert got == [
        entity("PER", "דוד בן\u200f-גוריון", 0, 2, 1, 15),
        entity("LOC", "בירושל\u200fים", 3, 4, 21, 30),
    ]
    for e in got:
        assert line[e["start"] : e["end"]] == e["text"]


def test_format_text():
    result = {
        "text": "משה גר בחיפה",
        "entities": [entity("PER", "משה", 0, 1, 0, 3), entity("LOC", "בחיפה", 2, 3, 7, 12)],
    }
    assert format_text(result) == "משה גר בחיפה\nPER\t0-3\tמשה\nLOC\t7-12\tבחיפה\n"


def test_input_lines_split_on_newlines_only():
    assert _lines("a\r\nb\n") == ["a", "b"]
    assert _lines("a\n\nb") == ["a", "", "b"]
    assert _lines("a\u2028b") == ["a\u2028b"]  # a line separator inside a line stays
    assert _lines("") == []


def test_user_errors_exit_2(tmp_path, capsys):
    assert main([str(tmp_path / "missing"), "x"]) == 2
    assert "no such file or directory" in capsys.readouterr().err
    assert main([str(tmp_path), "x"]) == 2
    assert "neither a run directory" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path), "x", "--file", "f.txt"])
    assert exc.value.code == 2


def read_json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def check_result(r: dict, line: str) -> None:
    assert r["text"] == line
    assert r["words"] == [w for w, _, _ in split_words(line)]
    assert len(r["tags"]) == len(r["words"])
    for e in r["entities"]:
        assert line[e["start"] : e["end"]] == e["text"]
        assert 0 <= e["start_word"] < e["end_word"] <= len(r["words"])
        assert r["tags"][e["start_word"]][2:] == e["type"]


@pytest.mark.slow
def test_predict_agrees_with_evaluation_and_offsets_hold(run_dir, tmp_path, capsys):
    """Tags of the validation sentences equal ner-evaluate's predictions; offsets are exact."""
    from ner.data.files import read_sentences
    from ner.tools.evaluate import main as evaluate_main

    conll = tmp_path / "pred.conll"
    out = str(tmp_path / "m.json")
    assert evaluate_main([str(run_dir), "--predictions", str(conll), "--output", out]) == 0
    evaluated = read_sentences(conll, "validation")  # last column: the predicted tags
    lines = [" ".join(s.tokens) for s in evaluated]
    assert all(
        [w for w, _, _ in split_words(x)] == s.tokens for x, s in zip(lines, evaluated, strict=True)
    )
    capsys.readouterr()

    assert main([str(run_dir), *lines]) == 0
    results = read_json_lines(capsys.readouterr().out)
    assert len(results) == len(lines)
    for r, line, s in zip(results, lines, evaluated, strict=True):
        check_result(r, line)
        assert r["tags"] == s.tags
    n_entities = sum(len(r["entities"]) for r in results)
    assert n_entities >= 5, "the demo model should find entities, or the offsets go untested"


@pytest.mark.slow
def test_mixed_script_long_and_empty_lines(run_dir, tmp_path, capsys):
    long_line = " ".join(["משה כהן גר בחיפה ועובד בבנק לאומי ."] * 60)  # 480 words, many windows
    lines = [
        'יעל לוי מ"הארץ" ביקרה ב-New York עם John Smith ( IBM ) ב-2011.',
        "",
        "Visit Tel Aviv and Haifa, 3.5 km from IBM's office.",
        long_line,
        "\u200fדוד בן-גוריון\u200f גר בתל אביב",
        "ביקר בירושל\u200fים 🇮🇱 עם 👨\u200d👩\u200d👧 ו-👍🏽👍🏽 1️⃣",
    ]
    assert main([str(run_dir), *lines, "--batch-size", "2"]) == 0
    results = read_json_lines(capsys.readouterr().out)
    assert len(results) == len(lines)
    for r, line in zip(results, lines, strict=True):
        check_result(r, line)
    assert results[1] == {"text": "", "words": [], "tags": [], "entities": []}
    assert len(results[3]["words"]) == 480  # more than fit in one window: none is lost

    file = tmp_path / "in.txt"
    file.write_text("\ufeff" + "\r\n".join(lines) + "\r\n", encoding="utf-8")
    assert main([str(run_dir), "--file", str(file), "--format", "text"]) == 0
    text = capsys.readouterr().out
    blocks = text.split("\n\n")
    assert blocks[-1] == "" and len(blocks) == len(results) + 1
    for r, block in zip(results, blocks, strict=False):
        got = block.split("\n")
        assert got[0] == r["text"]
        assert got[1:] == [
            f"{e['type']}\t{e['start']}-{e['end']}\t{e['text']}" for e in r["entities"]
        ]

    bad = tmp_path / "bad.txt"
    bad.write_bytes("שלום\nעולם\n".encode() + b"\xff\n")
    assert main([str(run_dir), "--file", str(bad)]) == 2
    assert "line 3" in capsys.readouterr().err


@pytest.mark.slow
def test_stdin_through_a_subprocess(run_dir):
    lines = ["משה כהן גר בחיפה .", "", "בנק לאומי היא חברה שמרכזה בעיר אילת ."]
    out = subprocess.run(
        [sys.executable, "-m", "ner.tools.predict", str(run_dir / "best_model")],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        encoding="utf-8",
        env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"},
        timeout=240,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert STDIN_HINT not in out.stderr  # a pipe is not a person: no hint
    results = read_json_lines(out.stdout)
    assert len(results) == 3
    for r, line in zip(results, lines, strict=True):
        check_result(r, line)
    assert results[1]["words"] == []


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_stdin_from_a_terminal_says_it_is_reading(run_dir):
    """Without TEXT or --file on a terminal, ner-predict waited in silence; now one line on
    stderr says it reads stdin and how to end, and the lines typed are tagged."""
    primary, terminal = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ner.tools.predict", str(run_dir / "best_model")],
        stdin=terminal,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"},
    )
    os.close(terminal)
    try:
        os.write(primary, "משה כהן גר בחיפה .\n".encode())
        os.write(primary, b"\x04")  # Ctrl-D at the start of a line: end of input
        out, err = proc.communicate(timeout=240)
    finally:
        proc.kill()
        os.close(primary)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert STDIN_HINT in err.decode().splitlines()
    [result] = read_json_lines(out.decode())
    check_result(result, "משה כהן גר בחיפה .")


@pytest.mark.slow
def test_ctrl_c_at_the_input_is_one_line_and_status_130(run_dir, capsys, monkeypatch):
    """Ctrl-C while ner-predict waits for the next line of stdin: the lines tagged so far are
    whole, then one line and status 130 (issue 28: a KeyboardInterrupt traceback before)."""
    import io

    class Terminal(io.BytesIO):
        """A line typed, then Ctrl-C."""

        def __iter__(self):
            yield "דוד גר בחיפה\n".encode()
            raise KeyboardInterrupt

        def isatty(self) -> bool:
            return False

    import ner.tools.predict

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(Terminal()))
    monkeypatch.setattr(ner.tools.predict, "CHUNK_LINES", 1)  # each line tagged as it comes
    capsys.readouterr()
    try:
        status = main([str(run_dir), "--format", "json"])
    except KeyboardInterrupt:
        pytest.fail("the KeyboardInterrupt reached the caller: a traceback")
    out, err = capsys.readouterr()
    assert status == 130 and err == "ner-predict: interrupted (Ctrl-C)\n"
    assert [r["text"] for r in read_json_lines(out)] == ["דוד גר בחיפה"]
