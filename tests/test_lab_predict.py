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


def test_choice_answer_is_recorded(store):
    p = Prediction("c6-retries", "How many times does step 4 run?", choices=["1", "4", "5"],
                   answer="5", explain="One attempt plus four retries.", store=store)
    outcome = p.answer("5", confidence=4)
    assert outcome.correct and "right" in outcome.text()
    wrong = p.answer("4", confidence=2)
    assert not wrong.correct
    records = load_records(store)
    assert [(r["value"], r["confidence"], r["correct"]) for r in records] == \
        [("5", 4, True), ("4", 2, False)]
    assert records[0]["source"] == "code"


def test_numeric_answers_use_a_tolerance(store):
    p = Prediction("fail-chance", "Chance a 6-step run fails (%)?", choices="numeric",
                   answer=26.5, store=store)
    assert p.answer(26, 3).correct
    assert not p.answer(20, 3).correct
    assert not p.answer("lots", 3).correct
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


def test_widget_answer_is_recorded_as_widget(store):
    pytest.importorskip("ipywidgets")
    p = Prediction("w", "q", choices=["a", "b"], answer="b", store=store)
    box = p.widget()
    pick, confidence, button = box.children[1], box.children[2], box.children[3]
    pick.value, confidence.value = "b", 5
    button.click()
    assert p.outcome and p.outcome.correct and p.outcome.confidence == 5
    assert load_records(store)[-1]["source"] == "widget"


def test_calibration_counts_latest_answer_per_prediction(store):
    store.parent.mkdir(parents=True)
    rows = [{"id": "a", "confidence": 5, "correct": False},
            {"id": "a", "confidence": 5, "correct": True},   # latest answer for "a" wins
            {"id": "b", "confidence": 5, "correct": False},
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
