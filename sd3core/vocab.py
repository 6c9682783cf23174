"""The closed vocabulary of the project: the nine spatial predicates and the synthetic world's
shapes, colours, sizes and materials, with the words people use for them.

Everything here is plain data; other modules import it and never redefine it.
"""

# The nine VSD relations, in the order VSD lists them. A relation's index in this tuple is its
# class id wherever a model predicts predicates.
PREDICATES = (
    "on",
    "to the left of",
    "under",
    "behind",
    "to the right of",
    "in",
    "next to",
    "in front of",
    "above",
)

# predicate -> the predicate that holds with subject and object swapped (None: no single inverse).
INVERSE_PREDICATE = {
    "on": None,  # the inverse of "on" is "under", but "under" does not imply touching
    "to the left of": "to the right of",
    "to the right of": "to the left of",
    "under": "above",
    "above": "under",
    "behind": "in front of",
    "in front of": "behind",
    "in": None,
    "next to": "next to",
}

# Shapes of the synthetic world. "bucket" is the open container, so "in" occurs.
SHAPES = ("cube", "sphere", "cylinder", "cone", "pyramid", "bucket")
CONTAINER_SHAPES = ("bucket",)
# Shapes with a flat top that another object can rest on.
FLAT_TOP_SHAPES = ("cube", "cylinder")

# Colour name -> base albedo as sRGB 0-255.
COLOURS = {
    "red": (200, 30, 30),
    "orange": (240, 130, 20),
    "yellow": (235, 210, 30),
    "green": (40, 160, 50),
    "cyan": (30, 200, 210),
    "blue": (35, 60, 210),
    "purple": (130, 40, 180),
    "white": (235, 235, 235),
}
SIZES = ("small", "large")
MATERIALS = ("matte", "shiny")

# canonical word -> other words a person may use for it (all lower case, singular).
SYNONYMS = {
    "cube": ("block", "box"),
    "sphere": ("ball", "orb"),
    "cylinder": ("can", "drum"),
    "cone": ("cone",),
    "pyramid": ("pyramid",),
    "bucket": ("pail", "tub"),
    "small": ("little", "tiny"),
    "large": ("big", "huge"),
    "matte": ("rubber", "dull"),
    "shiny": ("metal", "metallic", "glossy"),
}


def canonical_word(word: str) -> str:
    """Map a synonym to the vocabulary's canonical word ("ball" -> "sphere"); other words unchanged."""
    w = word.lower()
    for canon, others in SYNONYMS.items():
        if w == canon or w in others:
            return canon
    return w


ATTRIBUTE_KIND = {**{c: "colour" for c in COLOURS}, **{s: "size" for s in SIZES},
                  **{m: "material" for m in MATERIALS}}
