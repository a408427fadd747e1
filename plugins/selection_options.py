"""The options every tournament-selection strategy takes, checked the same way: each bad value is
refused before a run exists, with the option's name and its bounds."""

from __future__ import annotations

#: A population of more than this is no population a search can fill (each member is an evaluation).
MAX_POPULATION = 1_000_000


def check_whole_number(name: str, value: object, least: int, most: int, most_is: str = "") -> None:
    """ValueError naming `name` unless `value` is a whole number from `least` to `most` (which the
    message calls `most_is`, when given)."""
    whole = isinstance(value, int) and not isinstance(value, bool)
    if not whole or not least <= value <= most:
        bound = f"{most_is} ({most})" if most_is else str(most)
        kind = "" if whole else ", a whole number"
        raise ValueError(f"{name} must be between {least} and {bound}{kind}, got {value!r}")


def check_selection(population_size: object, tournament_size: object) -> None:
    """The population first (a tournament's bound depends on it), then the tournament."""
    check_whole_number("population_size", population_size, 1, MAX_POPULATION)
    check_whole_number("tournament_size", tournament_size, 1, population_size, "population_size")
