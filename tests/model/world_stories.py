"""Modern one- and two-sentence news stories, written for these tests, with the world theme a foreign-policy
desk would file each under (``configs/taxonomy/world-themes.yaml``).

Every story names people, groups, places or technologies of the 2020s, which a 1987 wire corpus never saw.
``theme`` is the theme the story is about; ``also`` lists a second theme that is just as right for a story
that spans two (a tariff fight is trade and diplomacy). The behaviour tests require ``theme`` among the
predicted themes and accept ``theme`` or ``also`` as the top-scoring theme.
"""

from __future__ import annotations

from typing import NamedTuple

from world_themes import THEMES


class Story(NamedTuple):
    key: str  # the test id
    text: str
    theme: str
    also: tuple[str, ...] = ()

    @property
    def themes(self) -> tuple[str, ...]:
        """Every theme the story may be filed under, ``theme`` first."""
        return (self.theme, *self.also)


CONFLICT, DIPLOMACY, POLITICS, LAW, ECONOMY, DISASTERS, HEALTH, SCIENCE, CULTURE, SPORTS, MIGRATION = THEMES

STORIES = [
    # conflicts: drone strikes, ceasefires, insurgencies
    Story(
        "kharkiv-drones",
        "Russian drones struck energy facilities in Kharkiv overnight, leaving thousands of homes without "
        "power, Ukrainian officials said.",
        CONFLICT,
    ),
    Story(
        "gaza-ceasefire",
        "Israel and Hamas agreed to a ceasefire in Gaza under which hostages will be freed in exchange for "
        "Palestinian prisoners.",
        CONFLICT,
        (DIPLOMACY,),
    ),
    Story(
        "houthi-missile",
        "Houthi militants fired a ballistic missile at a container ship in the Red Sea, US Central Command "
        "said.",
        CONFLICT,
    ),
    Story(
        "m23-goma",
        "Fighters of the M23 rebel group seized the airport in Goma after days of clashes with Congolese "
        "troops.",
        CONFLICT,
    ),
    Story(
        "rsf-el-fasher",
        "The Rapid Support Forces shelled a displacement camp near El Fasher in Sudan's Darfur region, "
        "killing at least 30 civilians.",
        CONFLICT,
    ),
    Story(
        "ttp-convoy",
        "A suicide bomber from the Pakistani Taliban rammed a police convoy in Khyber Pakhtunkhwa, killing "
        "12 officers.",
        CONFLICT,
    ),
    Story(
        "sahel-ambush",
        "Jihadist insurgents ambushed an army patrol in northern Burkina Faso, the military junta said.",
        CONFLICT,
    ),
    Story(
        "kashmir-strikes",
        "India launched missile strikes on what it called militant camps in Pakistan-administered Kashmir. "
        "Islamabad vowed to respond.",
        CONFLICT,
    ),
    # summits, state visits, sanctions
    Story(
        "xi-moscow",
        "Chinese President Xi Jinping arrived in Moscow for a three-day state visit and talks with Vladimir "
        "Putin.",
        DIPLOMACY,
    ),
    Story(
        "g20-johannesburg",
        "Leaders of the G20 gathered in Johannesburg for a summit dominated by debt relief for poorer "
        "countries.",
        DIPLOMACY,
    ),
    Story(
        "eu-shadow-fleet",
        "The European Union adopted a new package of sanctions against Russia aimed at the shadow fleet of "
        "tankers carrying its oil.",
        DIPLOMACY,
        (ECONOMY,),
    ),
    Story(
        "iran-drone-sanctions",
        "Washington imposed sanctions on Iranian officials it accused of supplying attack drones to Russia.",
        DIPLOMACY,
    ),
    Story(
        "modi-xi-sco",
        "Narendra Modi and Xi Jinping held talks on the sidelines of the Shanghai Cooperation Organisation "
        "summit in Tianjin.",
        DIPLOMACY,
    ),
    Story(
        "saudi-iran-embassies",
        "Saudi Arabia and Iran reopened their embassies after a China-brokered deal restored diplomatic "
        "relations.",
        DIPLOMACY,
    ),
    Story(
        "nato-ministers",
        "NATO foreign ministers met in Brussels to discuss more air defence systems for Ukraine.",
        DIPLOMACY,
        (CONFLICT,),
    ),
    Story(
        "macron-prabowo",
        "French President Emmanuel Macron received Indonesian President Prabowo Subianto at the Elysee "
        "Palace, where the two signed defence and energy agreements.",
        DIPLOMACY,
    ),
    Story(
        "unsc-veto",
        "The UN Security Council failed to adopt a resolution on Sudan after Russia cast its veto.",
        DIPLOMACY,
    ),
    # elections and coalition talks
    Story(
        "merz-coalition",
        "Friedrich Merz's conservatives opened coalition talks with the Social Democrats after winning "
        "Germany's federal election.",
        POLITICS,
    ),
    Story(
        "milei-midterms",
        "Javier Milei's party won the most seats in Argentina's midterm legislative elections.",
        POLITICS,
    ),
    Story(
        "moldova-vote",
        "Voters in Moldova went to the polls in a parliamentary election seen as a test of the country's "
        "pro-European course.",
        POLITICS,
    ),
    Story(
        "takaichi-ldp",
        "Japan's Liberal Democratic Party chose Sanae Takaichi as its leader, putting her on course to "
        "become prime minister.",
        POLITICS,
    ),
    Story(
        "wilders-walkout",
        "The Dutch cabinet collapsed after Geert Wilders pulled his party out of the governing coalition.",
        POLITICS,
    ),
    Story(
        "yoon-impeached",
        "South Korea's National Assembly voted to impeach President Yoon Suk Yeol over his short-lived "
        "declaration of martial law.",
        POLITICS,
        (LAW,),
    ),
    Story(
        "sheinbaum-sworn-in",
        "Claudia Sheinbaum was sworn in as Mexico's first woman president.",
        POLITICS,
    ),
    # law and crime
    Story(
        "sarkozy-verdict",
        "A Paris court convicted former president Nicolas Sarkozy of criminal conspiracy over Libyan money "
        "for his 2007 campaign.",
        LAW,
    ),
    Story(
        "ecuador-gang-leader",
        "Police in Ecuador recaptured a gang leader who had escaped from a maximum-security prison in "
        "Guayaquil.",
        LAW,
    ),
    Story(
        "sydney-stabbing",
        "Prosecutors charged a man with murder after a stabbing at a Sydney shopping centre left six people "
        "dead.",
        LAW,
    ),
    Story(
        "icc-warrants",
        "The International Criminal Court issued arrest warrants for Benjamin Netanyahu and a Hamas "
        "commander over alleged war crimes.",
        LAW,
        (DIPLOMACY,),
    ),
    Story(
        "fentanyl-raid",
        "Federal agents seized fentanyl pills worth millions of dollars in a raid on a cartel stash house "
        "in Arizona.",
        LAW,
    ),
    Story(
        "hong-kong-activists",
        "A Hong Kong court jailed 45 pro-democracy activists under the national security law.",
        LAW,
    ),
    # economy, tariffs and trade talks
    Story(
        "ev-tariffs",
        "The United States raised tariffs on Chinese electric vehicles to 100 percent, and Beijing "
        "threatened to retaliate.",
        ECONOMY,
        (DIPLOMACY,),
    ),
    Story(
        "usmca-review",
        "Trade negotiators from Washington and Ottawa resumed talks on steel and aluminium duties ahead of "
        "the review of the USMCA.",
        ECONOMY,
        (DIPLOMACY,),
    ),
    Story(
        "nvidia-value",
        "Nvidia's market value passed four trillion dollars as demand for its artificial intelligence chips "
        "kept growing.",
        ECONOMY,
        (SCIENCE,),
    ),
    Story(
        "argentina-inflation",
        "Argentina's annual inflation fell below 40 percent for the first time in three years, the "
        "statistics agency reported.",
        ECONOMY,
    ),
    Story(
        "ecb-cut",
        "The European Central Bank cut interest rates by a quarter point as growth in the eurozone stalled.",
        ECONOMY,
    ),
    Story(
        "opec-output",
        "OPEC+ agreed to raise oil output again next month despite falling crude prices.",
        ECONOMY,
    ),
    # migration: asylum, border crossings, deportations, refugee boats
    Story(
        "lampedusa-boat",
        "A boat carrying about 60 migrants capsized off the Italian island of Lampedusa. The coast guard "
        "rescued 20 survivors.",
        MIGRATION,
        (DISASTERS,),
    ),
    Story(
        "cecot-deportations",
        "The Trump administration deported more than 200 Venezuelans to a prison in El Salvador under an "
        "18th-century wartime law.",
        MIGRATION,
        (LAW,),
    ),
    Story(
        "border-crossings",
        "Border Patrol agents reported a sharp drop in illegal crossings at the southern border after new "
        "asylum restrictions took effect.",
        MIGRATION,
    ),
    Story(
        "channel-returns",
        "Britain announced a deal with France to send back asylum seekers who cross the Channel in small "
        "boats.",
        MIGRATION,
        (DIPLOMACY,),
    ),
    Story(
        "german-border-checks",
        "Germany began turning back asylum seekers at its land borders with Poland and Austria.",
        MIGRATION,
    ),
    Story(
        "rohingya-exodus",
        "Thousands of Rohingya refugees crossed into Bangladesh to escape fighting between the Arakan Army "
        "and Myanmar's junta.",
        MIGRATION,
        (CONFLICT,),
    ),
    Story(
        "ice-raid",
        "ICE agents detained dozens of undocumented immigrants in a raid on a meatpacking plant in Nebraska.",
        MIGRATION,
        (LAW,),
    ),
    # disasters: earthquakes, floods, wildfires, cyclones, crashes
    Story(
        "mandalay-quake",
        "A magnitude 7.7 earthquake struck central Myanmar, bringing down buildings in Mandalay and killing "
        "more than a thousand people.",
        DISASTERS,
    ),
    Story(
        "valencia-floods",
        "Flash floods swept through towns around Valencia after torrential rain, killing more than 200 "
        "people.",
        DISASTERS,
    ),
    Story(
        "palisades-fire",
        "Wildfires driven by Santa Ana winds destroyed thousands of homes in Pacific Palisades and Altadena.",
        DISASTERS,
    ),
    Story(
        "chido-mayotte",
        "Cyclone Chido tore through the French territory of Mayotte, flattening whole shantytowns.",
        DISASTERS,
    ),
    Story(
        "ahmedabad-crash",
        "An Air India Boeing 787 crashed shortly after take-off from Ahmedabad, killing more than 240 people.",
        DISASTERS,
    ),
    Story(
        "enga-landslide",
        "A landslide buried a village in Papua New Guinea's Enga province, and rescuers fear hundreds are "
        "dead.",
        DISASTERS,
    ),
    # health and environment
    Story(
        "mpox-emergency",
        "The World Health Organization declared the spread of mpox in Central Africa a public health "
        "emergency of international concern.",
        HEALTH,
    ),
    Story(
        "texas-measles",
        "Measles cases in West Texas passed 500 as the outbreak spread through under-vaccinated communities.",
        HEALTH,
    ),
    Story(
        "hottest-year",
        "Climate scientists said last year was the hottest on record and the first to exceed 1.5 degrees "
        "of warming.",
        HEALTH,
        (SCIENCE,),
    ),
    Story(
        "plastics-treaty",
        "Talks in Geneva on a global treaty to curb plastic pollution ended without agreement.",
        HEALTH,
        (DIPLOMACY,),
    ),
    # science and technology
    Story(
        "starship-catch",
        "SpaceX launched its Starship rocket on another test flight from Texas, and the launch tower caught "
        "the returning booster.",
        SCIENCE,
    ),
    Story(
        "chatgpt-release",
        "OpenAI released a new version of ChatGPT that can reason step by step through maths problems.",
        SCIENCE,
    ),
    Story(
        "chandrayaan-landing",
        "India's Chandrayaan-3 lander touched down near the south pole of the Moon.",
        SCIENCE,
    ),
    Story(
        "airport-ransomware",
        "A ransomware attack on a check-in software supplier disrupted flights at airports across Europe.",
        SCIENCE,
        (LAW,),
    ),
    # culture
    Story(
        "pope-leo-mass",
        "Pope Leo XIV celebrated his first Christmas Mass in St Peter's Basilica.",
        CULTURE,
    ),
    Story(
        "eras-tour",
        "Taylor Swift's Eras Tour became the first concert tour to gross more than two billion dollars.",
        CULTURE,
    ),
    Story(
        "han-kang-nobel",
        "South Korean novelist Han Kang won the Nobel Prize in Literature.",
        CULTURE,
    ),
    Story(
        "notre-dame-reopens",
        "Notre-Dame Cathedral in Paris reopened five years after a fire destroyed its roof and spire.",
        CULTURE,
    ),
    # sports
    Story(
        "champions-league-final",
        "Real Madrid beat Borussia Dortmund 2-0 at Wembley to win their 15th Champions League title.",
        SPORTS,
    ),
    Story(
        "kipyegon-record",
        "Kenya's Faith Kipyegon broke the world record in the women's 1,500 metres at the Paris Diamond "
        "League.",
        SPORTS,
    ),
    Story(
        "verstappen-title",
        "Max Verstappen clinched his fourth Formula One world championship at the Las Vegas Grand Prix.",
        SPORTS,
    ),
    Story(
        "t20-final",
        "India beat South Africa in the final of the T20 World Cup in Barbados.",
        SPORTS,
    ),
]
