"""A small grammar of neutral background sentences: weather, landscapes, crafts, animals, plants and history.

Owns: `FillerGrammar` (templates with slots, and the word lists that fill them). The sentences are deliberately
dull and never use a person name, place, object or fact verb of `vocab.py` (nor "VAR" or "Locker"), so nothing
in the background can be mistaken for a fact. `tests/test_tasks_haystack.py` checks this on many samples.

Run `python -m atommem.tasks.filler` to print a few sentences.
"""
from __future__ import annotations

import random
import re

WORDS = {
    "adj": ("quiet", "ancient", "distant", "pale", "golden", "silver", "narrow", "broad", "gentle", "restless",
            "weathered", "forgotten", "crimson", "misty", "rugged", "solemn", "hollow", "bright", "faded", "frozen",
            "sunlit", "slender", "vast", "windswept", "shadowy", "lonely", "peaceful", "barren", "fertile", "steep"),
    "land": ("valley", "ridge", "plateau", "canyon", "glacier", "marsh", "coastline", "delta", "tundra", "prairie",
             "headland", "estuary", "lagoon", "moor", "fjord", "escarpment", "savanna", "steppe", "peninsula",
             "highland", "basin", "gorge", "dune", "floodplain", "crater", "bluff", "wetland", "hillside"),
    "weather": ("drizzle", "frost", "fog", "thunder", "breeze", "hail", "sleet", "haze", "rainfall", "snowfall",
                "monsoon", "gale", "dew", "mist", "heatwave", "downpour", "squall", "blizzard"),
    "sky": ("sky", "horizon", "dawn", "dusk", "twilight", "moonlight", "starlight", "sunrise", "overcast"),
    "craft": ("pottery", "weaving", "carving", "glassblowing", "bookbinding", "embroidery", "masonry",
              "blacksmithing", "calligraphy", "quilting", "tanning", "lacemaking", "engraving", "joinery",
              "dyeing", "enamelling", "thatching", "coppersmithing"),
    "artisans": ("potters", "weavers", "carvers", "masons", "smiths", "engravers", "glaziers", "coopers",
                 "tanners", "dyers", "scribes", "cartographers", "thatchers", "bookbinders"),
    "material": ("clay", "wool", "oak", "flax", "bronze", "copper", "slate", "marble", "cedar", "linen", "pewter",
                 "walnut", "jade", "birch", "limestone", "tin", "ash", "horn", "reed"),
    "hist": ("dynasties", "treaties", "harvests", "caravans", "guilds", "councils", "festivals", "migrations",
             "chronicles", "monasteries", "republics", "empires", "settlements", "alliances", "markets"),
    "era": ("the early centuries", "the age of sail", "medieval times", "antiquity", "the bronze age",
            "the long peace", "the iron age", "the northern wars", "the years of famine", "the first kingdoms"),
    "animals": ("herons", "foxes", "elk", "swallows", "salmon", "otters", "hares", "cranes", "beetles", "moths",
                "wolves", "bison", "gulls", "owls", "badgers", "starlings", "deer", "lynxes"),
    "plants": ("ferns", "lichens", "reeds", "heather", "pines", "willows", "mosses", "poppies", "thistles",
               "birches", "sedges", "junipers", "brambles", "clovers"),
    "time": ("In late autumn", "Every spring", "At first light", "During the long winter", "Through the summer months",
             "After the first frost", "Late in the evening", "Before the thaw", "Some years", "Once a decade"),
    "season": ("spring", "summer", "autumn", "winter"),
    "colour": ("grey", "violet", "indigo", "ochre", "amber", "scarlet", "pearl", "slate blue"),
    "number": ("two", "three", "several", "many", "eleven", "forty", "a dozen", "countless"),
    "rests": ("lies", "rests", "sleeps", "stretches", "waits", "shimmers"),
    "cause": ("a long drought", "shifting trade", "repeated floods", "a failed harvest", "political rivalry",
              "a cold decade", "new roads", "a quiet plague"),
    "dir": ("northern", "southern", "eastern", "western", "coastal", "inland"),
}
WORDS["adj2"] = WORDS["adj"]
WORDS["land2"] = WORDS["land"]
WORDS["material2"] = WORDS["material"]

TEMPLATES = (
    "The {adj} {land} {rests} beneath a {adj2} {sky}.",
    "{time}, {weather} drifts across the {adj} {land}.",
    "Old records describe the {hist} of {era} in careful detail.",
    "The art of {craft} depends on patience and a steady hand.",
    "{artisans} in the {dir} regions favoured {material} over {material2}.",
    "{animals} gather near the {land} when the {weather} arrives.",
    "A {adj} layer of {weather} covered the {land} for {number} days.",
    "Scholars still debate how the {hist} of {era} began.",
    "{plants} grow thickly along the edges of the {land}.",
    "The {craft} of that period used {material} and {material2}.",
    "In {era}, {hist} shaped the fortunes of entire regions.",
    "The {sky} brightened.",
    "{weather} followed.",
    "{animals} called softly.",
    "Time passed slowly.",
    "Every {season}, the {land} changes colour as the {plants} fade.",
    "Local stories claim that the {land} was once a {adj} {land2}.",
    "A {material} bridge survived the {weather} of {number} winters.",
    "A guide to {craft} lists {number} stages, each slower than the one before.",
    "Maps from {era} show the {land} far larger than it is today.",
    "{artisans} often traded their {material} goods at seasonal fairs.",
    "The {weather} eased by evening, and the {sky} turned {colour}.",
    "Herds of {animals} crossed the {adj} {land} in search of grazing.",
    "Between the {land} and the {land2} flows a {adj} stream.",
    "Historians link the decline of the {hist} to {cause}.",
    "The smell of {material} and smoke filled the air.",
    "On {adj} mornings the {land} disappears behind the {weather}.",
    "Patterns in {craft} often echo the shapes of {plants}.",
    "No one recorded who first practised {craft} among the {dir} {artisans}.",
    "Some say the {weather} carries the scent of {plants} from the {dir} {land}.",
    "By {era}, {craft} had become a respected trade.",
    "The {adj} light of the {sky} lingered over the {land}.",
    "{plants} and {plants} cover most of the {adj} {land}.",
    "The {hist} of {era} relied on {material} more than on gold.",
    "Even in {season}, the {land} stays {adj}.",
    "{time}, the {animals} return to the {land}.",
    "Apprentices in {craft} spent {number} years learning to work {material}.",
    "The {colour} {sky} promised {weather} before nightfall.",
)

_SLOT = re.compile(r"\{(\w+)\}")
_A_BEFORE_VOWEL = re.compile(r"\b([Aa]) (?=[aeiou])")


class FillerGrammar:
    """Draws sentences: a random template with each slot filled by an independent random word."""

    def __init__(self, templates=TEMPLATES, words=WORDS):
        self._compiled = []
        for template in templates:
            parts = _SLOT.split(template)  # literal, slot, literal, slot, ..., literal
            self._compiled.append((parts[0::2], [words[name] for name in parts[1::2]]))

    def sentence(self, rng: random.Random) -> str:
        literals, slots = self._compiled[rng.randrange(len(self._compiled))]
        out = [literals[0]]
        for lit, choices in zip(literals[1:], slots):
            out.append(choices[rng.randrange(len(choices))])
            out.append(lit)
        text = _A_BEFORE_VOWEL.sub(r"\1n ", "".join(out))
        return text[0].upper() + text[1:]


if __name__ == "__main__":
    grammar = FillerGrammar()
    rng = random.Random(0)
    for _ in range(10):
        print(grammar.sentence(rng))
