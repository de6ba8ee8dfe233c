"""person: names from Faker's name lists, with a context rule so common words are not flagged.

A run of capitalised words is a person when it starts with a listed first name that is not
also a common word (an English lorem word of Faker's, a word of another locale's lorem list
that is not a first name of that locale, a month, a day), or with a title
(`Mr`, `Frau`, `Mme`, ...), or when a listed first name that is a common word (`Donna`, `April`)
stands after a cue (`with`, `for`, `Dear`, ...) or before a verb that needs a person (`asked`,
`reported`, `wants`, `schrieb`, `demande`, ...). Capitalised words after it that are listed names or
not common words belong to the span. A last name alone is not flagged.
"""

import functools
import importlib
import re

from veil.transforms.detect.spans import Span

NAME_LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL")
_TOKEN = re.compile(r"[^\W\d_]+(?:['\u2019-][^\W\d_]+)*")
_TITLES = frozenset(
    "mr mrs ms miss dr prof sir madam herr frau mme mlle monsieur madame sr sra srta don doña sig sig.ra "
    "signor signora dhr mevr".split()
)
_CUES = frozenset(
    "with for to from named called customer client dear hi hello hey thanks thank met by "
    "mit für von kunde kundin avec pour client cliente con para per klant met voor".split()
)
# Verbs that, right after a listed first name that is also a common word, say it is a person
# (`Donna reported ...`, `April asked ...`), never `May we` or `Will it`.
_AFTER = frozenset(
    "called asked requested reported wants wanted wrote said says phoned emailed mentioned confirmed complained "
    "ordered paid replied visited explained agreed refused thanked needs needed rief fragte schrieb bittet "
    "möchte demande veut pide llamó escribió quiere chiede vuole belde vraagt schreef wil".split()
)
_CALENDAR = frozenset(
    "january february march april may june july august september october november december monday tuesday "
    "wednesday thursday friday saturday sunday".split()
)
PREFILTER = r"[A-Z\p{Lu}]"
# Faker's en_US lorem list is common English words (`summer`, `will` stay common words); the other
# locales' lists are words of texts, names included (es_ES holds `francisco`, `antonio`).
_CURATED_LOREM = frozenset({"en_US"})


def _names(provider, attribute: str) -> set[str]:
    value = getattr(provider, attribute, ())
    return {name for name in value if isinstance(name, str)}


@functools.cache
def name_lists() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """(first names, last names, common words (casefolded)) from Faker's locale providers."""
    first, last, common = set(), set(), set(_CALENDAR)
    for locale in NAME_LOCALES:
        provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
        own = set().union(*(_names(provider, a) for a in ("first_names", "first_names_female", "first_names_male")))
        first |= own
        last |= _names(provider, "last_names")
        try:
            lorem = importlib.import_module(f"faker.providers.lorem.{locale}").Provider
        except ModuleNotFoundError:
            continue
        words = {word.casefold() for word in lorem.word_list}
        if locale not in _CURATED_LOREM:  # drawn from texts: a first name of the locale there is that name
            words -= {name.casefold() for name in own}
        common |= words
    first = {name for name in first if len(name) > 1}
    return frozenset(first), frozenset(last), frozenset(common)


def _capitalised(token: str) -> bool:
    return token[0].isupper() and not token.isupper()


def find_persons(text: str) -> list[Span]:
    """Person names in `text` (see the module docstring for the rule)."""
    first_names, last_names, common = name_lists()
    tokens = list(_TOKEN.finditer(text))
    spans = []
    i = 0
    while i < len(tokens):
        token = tokens[i].group()
        previous = tokens[i - 1].group().casefold().rstrip(".") if i else ""
        titled = previous in _TITLES and _capitalised(token)
        listed = token in first_names and _capitalised(token)
        following = tokens[i + 1].group() if i + 1 < len(tokens) else ""
        cued = previous in _CUES or following in _AFTER
        starts = titled or (listed and (token.casefold() not in common or cued))
        if not starts:
            i += 1
            continue
        j = i + 1
        while j < len(tokens) and j - i < 4:
            gap = text[tokens[j - 1].end() : tokens[j].start()]
            word = tokens[j].group()
            if gap not in (" ", "-") or not _capitalised(word):
                break
            if word not in first_names and word not in last_names and word.casefold() in common:
                break
            j += 1
        start, end = tokens[i].start(), tokens[j - 1].end()
        normalized = " ".join(t.group() for t in tokens[i:j]).casefold()
        spans.append(Span(start, end, "person", normalized))
        i = j
    return spans
