"""Dish labels as people read them."""


def readable_label(label: str) -> str:
    """``"beef_carpaccio"`` -> ``"Beef carpaccio"``: underscores to spaces, first letter upper,
    the rest as it is. For a dish's name as its fact card spells it, use
    ``llm_client.facts.display_name``."""
    words = label.replace("_", " ").strip()
    return words[:1].upper() + words[1:]
