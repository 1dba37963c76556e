"""Offline answers: every intent for several dishes, unknown questions and dishes, speed."""

from __future__ import annotations

import statistics
import time

import pytest

from llm_client import ChatInputError, DishContext, dish_card, make_chat
from llm_client.offline import detect_intents, offline_answer

DISHES = ["apple_pie", "pad_thai", "sushi", "hummus", "steak", "caesar_salad", "edamame"]


def answer(question: str, label: str, **context) -> str:
    return offline_answer(question, DishContext(label, 0.9, **context))


@pytest.mark.parametrize("label", DISHES)
def test_ingredients(label: str) -> None:
    card = dish_card(label)
    text = answer("What's in it?", label)
    assert all(ingredient in text for ingredient in card["ingredients"])


@pytest.mark.parametrize("label", DISHES)
def test_allergens_are_listed_and_cautioned(label: str) -> None:
    card = dish_card(label)
    text = answer("Which allergens does it have?", label)
    assert all(allergen in text for allergen in card["allergens"])
    assert "typical approximations" in text and "allergy" in text


@pytest.mark.parametrize("label", DISHES)
def test_gluten_free_follows_the_card(label: str) -> None:
    text = answer("Is it gluten-free?", label)
    is_free = dish_card(label)["diet"]["gluten_free"]
    assert ("are gluten-free" in text) == is_free
    assert ("are not gluten-free" in text) == (not is_free)


@pytest.mark.parametrize("label", DISHES)
@pytest.mark.parametrize("flag", ["vegan", "vegetarian"])
def test_diet_flags_follow_the_card(label: str, flag: str) -> None:
    text = answer(f"Is it {flag}?", label)
    expected = "Yes" if dish_card(label)["diet"][flag] else "No"
    assert text.startswith(expected)


@pytest.mark.parametrize("label", DISHES)
@pytest.mark.parametrize(
    ("question", "allergen"),
    [
        ("Is it nut-free?", "nuts"),
        ("Does it contain peanuts?", "peanuts"),
        ("Any dairy in it?", "milk"),
        ("Does it have eggs?", "eggs"),
    ],
)
def test_named_allergen_questions(label: str, question: str, allergen: str) -> None:
    text = answer(question, label)
    contains = allergen in dish_card(label)["allergens"]
    assert (f"contain {allergen}." in text) == contains
    assert (f"have no {allergen}" in text) == (not contains)


@pytest.mark.parametrize("label", DISHES)
@pytest.mark.parametrize(
    "question", ["How many calories?", "How much protein is in it?", "What are the macros?"]
)
def test_nutrition_per_typical_serving(label: str, question: str) -> None:
    serving = dish_card(label)["serving"]
    text = answer(question, label)
    assert f"{serving['kcal']:g} kcal" in text and f"{serving['protein_g']:g} g protein" in text
    assert f"{serving['grams']:g} g" in text and "typical approximations" in text


@pytest.mark.parametrize("label", DISHES)
def test_cuisine_preparation_and_what_it_is(label: str) -> None:
    card = dish_card(label)
    assert card["cuisine"] in answer("Where does it come from?", label)
    assert card["preparation"] in answer("How do I make it at home?", label)
    assert card["preparation"] in answer("how is it made", label)
    assert card["description"] in answer("What is this?", label)


@pytest.mark.parametrize(
    "question", ["Which allergens?", "Is it gluten-free?", "Any dairy?", "Is it vegan?"]
)
def test_dishes_with_plural_names_read_as_english(question: str) -> None:
    text = answer(question, "nachos")
    assert "typical recipes for Nachos" in text or "Typical recipes for Nachos" in text
    assert "a typical Nachos" not in text and "Nachos is" not in text


def test_two_questions_in_one_get_two_answers() -> None:
    text = answer("What's in it and is it vegan?", "apple_pie")
    assert "Typical ingredients" in text and "not vegan" in text
    assert detect_intents("what is it made of") == ["ingredients"]


@pytest.mark.parametrize("question", ["Is it spicy?", "Who won the match?", "hello"])
def test_unknown_question_says_what_offline_mode_answers(question: str) -> None:
    text = answer(question, "sushi")
    assert "ingredients" in text and "calories" in text
    assert "HF_TOKEN" in text and "LLM_BASE_URL" in text


def test_unknown_dish_is_honest() -> None:
    text = answer("What's in it?", "moon_cheese")
    assert text.startswith("I have no offline facts about Moon cheese")
    assert "HF_TOKEN" in text and "LLM_BASE_URL" in text


def test_unsure_and_not_food_verdicts_are_mentioned() -> None:
    unsure = answer("What's in it?", "pad_thai", status="unsure", alternatives=["ramen"])
    assert unsure.startswith("*I'm not sure the photo shows Pad thai (it might be Ramen)")
    assert "may not show food" in answer("What's in it?", "pad_thai", status="not_food")


def test_offline_chat_streams_the_answer_and_checks_input(settings_for) -> None:
    chat = make_chat(settings_for())
    dish = DishContext("hummus", 0.97)
    assert chat.backend_name == "offline answers" and chat.is_offline
    assert "".join(chat.stream_answer("what's in it?", dish, [])) == chat.offline_answer(
        "what's in it?", dish
    )
    with pytest.raises(ChatInputError):
        list(chat.stream_answer("   ", dish, []))
    with pytest.raises(ChatInputError):
        list(chat.stream_answer("hi", dish, [{"role": "system", "content": "x"}]))
    with pytest.raises(ChatInputError):
        DishContext("hummus", 1.5)


def test_an_offline_answer_takes_well_under_20_ms() -> None:
    questions = [
        "What's in it?",
        "Is it gluten-free?",
        "How many calories?",
        "How is it made?",
        "Is it vegan?",
        "Where is it from?",
        "Is it spicy?",
    ]
    timings = []
    for label in DISHES * 5:
        for question in questions:
            start = time.perf_counter()
            answer(question, label)
            timings.append(time.perf_counter() - start)
    # A busy machine can pre-empt any single answer, so judge the distribution, not the max.
    assert statistics.median(timings) < 0.002
    assert statistics.quantiles(timings, n=10)[-1] < 0.020
