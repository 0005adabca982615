"""PRIMM predictions: answered from code, recorded, and summarised for calibration."""

import json

import pytest

from lab_support.predict import (
    Prediction,
    calibration_figure,
    calibration_table,
    check_answer,
    load_records,
)


@pytest.fixture
def store(tmp_path):
    return tmp_path / ".lab" / "predictions.jsonl"


def test_the_first_answer_is_recorded_and_counts(store):
    p = Prediction("c6-retries", "How many times does step 4 run?", choices=["1", "4", "5"],
                   answer="5", explain="One attempt plus four retries.", store=store,
                   notebook="notebooks/06.ipynb")
    outcome = p.answer("5", confidence=4)
    assert outcome.correct and "right" in outcome.text()
    again = p.answer("4", confidence=2)  # a second answer changes nothing
    assert again == outcome and p.locked
    records = load_records(store)
    assert [(r["value"], r["confidence"], r["correct"]) for r in records] == [("5", 4, True)]
    assert records[0]["source"] == "code" and records[0]["notebook"] == "notebooks/06.ipynb"


def test_a_prediction_shown_again_is_locked_on_its_first_answer(store):
    Prediction("q", "Which?", choices=["a", "b"], answer="b", store=store).answer("a", 2)
    again = Prediction("q", "Which?", choices=["a", "b"], answer="b", explain="Because b.",
                       store=store)  # a re-run cell, or a new kernel
    assert again.locked and again.outcome.value == "a" and again.outcome.correct is False
    assert again.answer("b", 5).value == "a"
    assert "you said earlier 'a'" in again.text()
    assert "Because b." in again.fallback_html() and "<details>" not in again.fallback_html()
    assert len(load_records(store)) == 1


def test_numeric_answers_use_a_tolerance(store):
    def answered(value):
        p = Prediction(f"fail-chance-{value}", "Chance a 6-step run fails (%)?",
                       choices="numeric", answer=26.5, store=store)
        return p.answer(value, 3).correct

    assert answered(26) and not answered(20) and not answered("lots")
    assert check_answer("Yes ", "yes", None)


def test_open_questions_and_numeric_aliases(store):
    open_q = Prediction("open", "What will you watch for?", store=store)
    assert open_q.answer("the retry count", 2).correct is None
    assert "recorded" in open_q.outcome.text()
    assert Prediction("n", "How many?", choices=int, answer=5, store=store).answer(5, 3).correct
    table = calibration_table(load_records(store))
    assert table["answers"].sum() == 1  # the open question is not scored


def test_bad_input_is_rejected(store):
    with pytest.raises(ValueError, match="not one of the choices"):
        Prediction("x", "q", choices=["a"], answer="b", store=store)
    p = Prediction("x", "q", choices=["a", "b"], answer="a", store=store)
    with pytest.raises(ValueError, match="confidence"):
        p.answer("a", 7)
    with pytest.raises(ValueError, match="not one of"):
        p.answer("c", 3)
    assert not store.exists()


def test_fallback_html_hides_the_answer_behind_reveal(store):
    p = Prediction("q1", "Which step reruns?", choices=["load", "draft"], answer="draft",
                   explain="Only the failed step.", store=store)
    page = p.fallback_html()
    assert "<details>" in page and "Only the failed step." in page
    assert page.index("<details>") < page.index("Only the failed step.")
    assert "lab.predictions['q1'].answer" in p.text()


def test_widget_answer_is_recorded_and_the_widget_locks(store):
    pytest.importorskip("ipywidgets")
    p = Prediction("w", "Is it *really* `memo`?", choices=["a", "b"], answer="b",
                   explain="The `memo` answers.", store=store)
    box = p.widget()
    head, pick, confidence, button, result = box.children
    assert "<em>really</em>" in head.value and "<code>memo</code>" in head.value
    pick.value, confidence.value = "b", 5
    button.click()
    assert p.outcome and p.outcome.correct and p.outcome.confidence == 5
    assert load_records(store)[-1]["source"] == "widget"
    assert pick.disabled and confidence.disabled and button.disabled
    assert "<code>memo</code>" in result.value and "`" not in result.value
    pick.value = "a"  # a locked widget cannot change the committed answer
    button.click()
    assert len(load_records(store)) == 1 and p.outcome.value == "b"
    relocked = Prediction("w", "q", choices=["a", "b"], answer="b", store=store).widget()
    assert relocked.children[1].disabled and relocked.children[1].value == "b"


def test_widget_asks_for_an_answer_before_revealing(store):
    pytest.importorskip("ipywidgets")
    p = Prediction("empty", "q", choices=["a", "b"], answer="a", store=store)
    box = p.widget()
    box.children[3].click()
    assert "Pick an answer first" in box.children[4].value and not store.exists()
    assert not box.children[3].disabled


def test_markdown_in_the_question_is_rendered_and_html_escaped(store):
    p = Prediction("md", "Which is *real* <b>x</b>?", choices=["`a`", "**b**"], answer="`a`",
                   store=store)
    page = p.fallback_html()
    assert "<em>real</em>" in page and "&lt;b&gt;x&lt;/b&gt;" in page
    assert "<code>a</code>" in page and "<strong>b</strong>" in page


def test_calibration_counts_the_first_answer_per_prediction(store):
    store.parent.mkdir(parents=True)
    rows = [{"id": "a", "confidence": 5, "correct": False},
            {"id": "a", "confidence": 5, "correct": True},   # a later answer never counts
            {"id": "b", "confidence": 5, "correct": True},
            {"id": "c", "confidence": 1, "correct": True}]
    store.write_text("".join(json.dumps(r) + "\n" for r in rows))
    table = calibration_table(load_records(store))
    assert table.loc[5, "answers"] == 2 and table.loc[5, "accuracy"] == pytest.approx(0.5)
    assert table.loc[1, "accuracy"] == 1.0 and table.loc[3, "answers"] == 0
    assert len(calibration_figure(table).axes) == 1


def test_corrupt_store_names_the_line(store):
    store.parent.mkdir(parents=True)
    store.write_text('{"id": "a"}\nnot json\n')
    with pytest.raises(ValueError, match=":2 "):
        load_records(store)
