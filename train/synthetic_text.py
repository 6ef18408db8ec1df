"""Sentences for each emotion, clear or deliberately uninformative (part of `train.synthetic`)."""

from __future__ import annotations

import numpy as np

from fusion.labels import EMOTIONS

# ---------------------------------------------------------------------------------------------
# Sentences


def _pick(rng: np.random.Generator, items: tuple | list):
    return items[int(rng.integers(len(items)))]


TIMES = (
    "today",
    "this morning",
    "tonight",
    "last night",
    "yesterday",
    "this afternoon",
    "right now",
    "this week",
    "again",
    "at work today",
    "on the way home",
    "over the weekend",
)
INTENSIFIERS = ("really", "so", "very", "incredibly", "pretty", "absolutely", "genuinely", "extremely", "honestly", "")
PEOPLE = (
    "my sister",
    "my boss",
    "my best friend",
    "our neighbour",
    "my dad",
    "my mum",
    "a colleague",
    "my roommate",
    "the landlord",
    "my teacher",
    "my brother",
    "my partner",
    "Sam",
    "Priya",
    "Carlos",
    "my cousin",
)
THINGS = (
    "the new schedule",
    "the plan for tomorrow",
    "the move",
    "the results",
    "the trip",
    "the new job",
    "the meeting",
    "the exam",
    "the news",
    "the weekend",
)

_VOCAB: dict[str, dict[str, tuple[str, ...]]] = {
    "happy": {
        "adj": (
            "happy",
            "thrilled",
            "delighted",
            "overjoyed",
            "glad",
            "excited",
            "cheerful",
            "over the moon",
            "ecstatic",
            "in such a good mood",
            "proud and happy",
        ),
        "event": (
            "I got the job I applied for",
            "my sister had a healthy baby girl",
            "we won the final",
            "my best friend got me concert tickets",
            "I passed my driving test",
            "the sun came out for our picnic",
            "my paper got accepted",
            "we adopted a puppy",
            "my grandparents came to visit",
            "I finished my first marathon",
            "I got a raise",
            "we moved into our first home",
            "my team loved my idea",
            "the kids made me breakfast",
        ),
        "templates": (
            "I'm {intens} {adj} {time}!",
            "{event}, and I'm {intens} {adj}.",
            "{event} {time}, best day in ages!",
            "I can't stop smiling since {event}.",
            "Guess what? {event}! I'm {adj}.",
            "Feeling {intens} {adj}, {event}.",
            "{who} made me laugh so hard {time}, I love it.",
            "This is the best news, {event}!",
            "Everything went right {time}, I'm {adj}.",
            "What a lovely day, {event}.",
            "So {adj} that {event}!",
            "We celebrated {time} because {event}.",
            "I'm in a great mood, {event}.",
            "Yay, {event}!",
            "Life feels wonderful {time}.",
            "I'm grinning from ear to ear, {event}.",
            "Such a joy {time}: {event}.",
            "I love this so much, {event}!",
        ),
    },
    "sad": {
        "adj": (
            "sad",
            "heartbroken",
            "down",
            "miserable",
            "depressed",
            "gloomy",
            "lonely",
            "devastated",
            "unhappy",
            "blue",
            "crushed",
        ),
        "event": (
            "my dog passed away",
            "my grandmother is in the hospital",
            "my best friend moved across the country",
            "I didn't get into the programme I wanted",
            "we had to say goodbye at the airport",
            "my partner and I broke up",
            "nobody came to my birthday dinner",
            "I lost my job",
            "my old cat died",
            "I failed the exam after all that studying",
            "the house I grew up in was sold",
            "I miss my family so much",
            "my grandfather's funeral was today",
        ),
        "templates": (
            "I'm {intens} {adj} {time}.",
            "{event}, and I feel {adj}.",
            "I'm not happy {time}, {event}.",
            "I'm not happy at all, {event}.",
            "I don't feel like doing anything since {event}.",
            "I cried all night because {event}.",
            "{event}. I miss how things used to be.",
            "Feeling {adj} {time}, {event}.",
            "It hurts so much that {event}.",
            "I just want to stay in bed, {event}.",
            "Nothing feels good anymore since {event}.",
            "My heart is heavy {time}, {event}.",
            "I can't stop crying, {event}.",
            "Everything feels grey {time}, I'm {adj}.",
            "I'm not okay, {event}.",
            "I feel so empty {time}.",
            "Tears keep coming, {event}.",
        ),
    },
    "angry": {
        "adj": (
            "angry",
            "furious",
            "annoyed",
            "livid",
            "fed up",
            "irritated",
            "mad",
            "fuming",
            "outraged",
            "frustrated",
        ),
        "event": (
            "someone scratched my car and drove off",
            "my landlord raised the rent again without asking",
            "the airline lost my luggage and nobody will help",
            "my coworker took credit for my work",
            "the neighbours blasted music until 3am",
            "they cancelled my appointment after I waited two hours",
            "the shop charged me twice and refuses a refund",
            "someone cut in front of me in the queue",
            "my roommate ate my food again",
            "the contractor never showed up",
            "they ignored my complaint for the third time",
            "my boss yelled at me in front of everyone",
        ),
        "templates": (
            "I'm {intens} {adj}, {event}.",
            "{event}, and I'm {adj}!",
            "I'm not happy about this at all, {event}.",
            "I'm not okay with how {who} treated me {time}.",
            "How dare they, {event}!",
            "{event}. Unbelievable, I'm {adj}.",
            "This makes my blood boil: {event}.",
            "I've had it with {who}, {event}.",
            "Stop wasting my time! {event}.",
            "I'm so sick of this, {event}.",
            "{who} lied to me {time} and I'm {adj}.",
            "I could scream, {event}.",
            "I am not happy with {who}, they broke their promise again.",
            "Seriously? {event}. I'm {adj}.",
            "That's it, I'm done being nice, {event}.",
            "I'm seething {time}, {event}.",
        ),
    },
    "fear": {
        "adj": (
            "scared",
            "terrified",
            "afraid",
            "frightened",
            "anxious",
            "nervous",
            "panicked",
            "petrified",
            "worried sick",
            "on edge",
        ),
        "event": (
            "I heard footsteps behind me in a dark alley",
            "someone is trying to open my front door",
            "the plane started shaking violently",
            "I need surgery next week",
            "a huge dog chased me down the street",
            "the doctor wants to run more tests",
            "there was a loud crash downstairs at midnight",
            "the car skidded on the ice",
            "I got lost alone in the woods",
            "the smoke alarm went off and I smelled fire",
            "a stranger has been following me home",
            "the lights went out during the storm",
        ),
        "templates": (
            "I'm {intens} {adj}, {event}.",
            "{event} and I'm {adj}.",
            "My hands are shaking, {event}.",
            "I don't feel safe {time}, {event}.",
            "Please help, {event}!",
            "I'm {adj} something terrible will happen {time}.",
            "What if it happens again? I'm {intens} {adj}.",
            "My heart is pounding, {event}.",
            "I can't sleep, {event}.",
            "I'm too {adj} to go outside {time}.",
            "I'm dreading {thing}, I'm {adj}.",
            "I froze when {event}.",
            "Something is wrong, {event}, I'm {adj}.",
            "I'm trembling {time}, {event}.",
            "I keep imagining the worst, {event}.",
        ),
    },
    "disgust": {
        "adj": ("disgusted", "grossed out", "repulsed", "sickened", "nauseated", "revolted", "appalled"),
        "event": (
            "I found mould all over the bread",
            "there was a hair in my soup",
            "the fridge smelled like rotten eggs",
            "someone spat on the pavement right next to me",
            "the station toilets were filthy",
            "my roommate left dirty dishes crawling with maggots",
            "the milk had gone sour and lumpy",
            "a cockroach ran across the restaurant table",
            "the man on the bus picked his nose and wiped it on the seat",
            "I stepped in something slimy",
            "the meat in the pack had turned green",
            "the bin was overflowing and stinking",
        ),
        "templates": (
            "Ew, {event}.",
            "Gross! {event}.",
            "I'm {intens} {adj}, {event}.",
            "{event}, it made me want to throw up.",
            "That's revolting, {event}.",
            "Yuck, {event}, so nasty.",
            "I can't stand it, {event}.",
            "I feel sick thinking about how {event}.",
            "{event}. Absolutely disgusting.",
            "I'm {adj} by the way {who} behaved {time}.",
            "The smell was vile, {event}.",
            "Ugh, {event}, I nearly gagged.",
            "So filthy and gross, {event}.",
            "That is vile, {who} is so disgusting.",
        ),
    },
    "surprise": {
        "adj": ("surprised", "shocked", "amazed", "astonished", "stunned", "speechless", "blown away"),
        "event": (
            "my brother showed up at my door after five years abroad",
            "I won a raffle I forgot I entered",
            "my friends threw me a surprise party",
            "it snowed in the middle of July",
            "my quiet neighbour turned out to be a famous drummer",
            "the package arrived a week early",
            "my old teacher recognised me on the train",
            "I found a hundred dollars in an old coat",
            "the exam was cancelled at the last minute",
            "my shy cousin announced she's getting married",
            "the ending of the film came out of nowhere",
        ),
        "templates": (
            "Wow, {event}!",
            "I can't believe it, {event}!",
            "No way! {event}.",
            "I'm {intens} {adj}, {event}!",
            "I did not see that coming, {event}.",
            "What?! {event}!",
            "Whoa, {event}, I'm {adj}.",
            "Out of nowhere, {event}.",
            "I was totally {adj} {time}, {event}.",
            "Never expected this: {event}!",
            "Oh my gosh, {event}!",
            "My jaw dropped when {event}.",
            "Wait, really? {event}!",
            "I'm still in shock, {event}.",
        ),
    },
    "neutral": {
        "adj": ("fine", "okay", "calm", "alright", "indifferent", "relaxed", "neither happy nor sad"),
        "event": (
            "I did the laundry and answered some emails",
            "I went to work and came home",
            "I had a sandwich for lunch",
            "the day went as planned",
            "I caught up on some reading",
            "the meeting covered the usual topics",
            "I walked to the shop and back",
            "I cleaned the kitchen",
            "nothing much happened",
            "I watered the plants",
        ),
        "templates": (
            "I feel {adj} {time}, nothing special.",
            "Just a normal day, {event}.",
            "Nothing much to report, {event}.",
            "{event}, an ordinary day really.",
            "I don't have strong feelings about {thing} either way.",
            "It's fine, I don't mind either way.",
            "I'm {adj} about {thing}, no big deal.",
            "Same as usual {time}: {event}.",
            "I'm not bothered, {event}.",
            "It was a regular day, {event}.",
            "Things are steady {time}, {event}.",
            "No complaints, no excitement, {event}.",
            "I feel {adj}, it was an uneventful day.",
            "Meh, {thing} is whatever, I'm {adj}.",
        ),
    },
}

# Uninformative sentences, the same for every label.
_UNCLEAR_TEMPLATES = (
    "I got a letter today.",
    "It is {weekday}.",
    "{who} called me {time}.",
    "I read the message {time}.",
    "The results came in {time}.",
    "We talked about {thing} {time}.",
    "The meeting moved to {clock}.",
    "I took the bus to {place}.",
    "There is a {object} on the table.",
    "{who} said something about {thing}.",
    "Someone knocked on the door {time}.",
    "I opened the box.",
    "I saw {who} at {place} {time}.",
    "The email arrived at {clock}.",
    "We had {food} for dinner.",
    "I looked at the photo again.",
    "The phone rang at {clock}.",
    "I just got back from {place}.",
    "Look at my face.",
    "This is me {time}.",
    "So, that happened.",
    "Let me tell you about {thing}.",
    "{who} told me the news {time}.",
    "I checked my bank account {time}.",
)
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_CLOCKS = ("9 am", "noon", "half past two", "4 pm", "six o'clock", "7:30")
_PLACES = ("the station", "the office", "the supermarket", "my parents' place", "the library", "the clinic")
_OBJECTS = ("letter", "package", "note", "phone", "key", "cup", "envelope")
_FOODS = ("pasta", "rice and beans", "soup", "leftovers", "pizza", "curry")


def make_sentence(label: str, rng: np.random.Generator, clear: bool = True) -> str:
    """A sentence that expresses `label`, or, when not `clear`, one that gives no hint of any emotion."""
    if label not in EMOTIONS:
        raise ValueError(f"Unknown emotion {label!r}; use one of {', '.join(EMOTIONS)}.")
    slots = {
        "time": _pick(rng, TIMES),
        "intens": _pick(rng, INTENSIFIERS),
        "who": _pick(rng, PEOPLE),
        "thing": _pick(rng, THINGS),
    }
    if clear:
        vocab = _VOCAB[label]
        slots |= {"adj": _pick(rng, vocab["adj"]), "event": _pick(rng, vocab["event"])}
        template = _pick(rng, vocab["templates"])
    else:
        slots |= {
            "weekday": _pick(rng, _WEEKDAYS),
            "clock": _pick(rng, _CLOCKS),
            "place": _pick(rng, _PLACES),
            "object": _pick(rng, _OBJECTS),
            "food": _pick(rng, _FOODS),
        }
        template = _pick(rng, _UNCLEAR_TEMPLATES)
    text = " ".join(template.format(**slots).split())  # an empty intensifier leaves a double space
    text = text.replace(" ,", ",").replace(" .", ".").replace(" !", "!")
    text = text[0].upper() + text[1:]
    style = rng.random()
    if style < 0.08:  # casual typing
        text = text.lower()
    elif style < 0.14:
        text = text.rstrip(".!")
    return text
