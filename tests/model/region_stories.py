"""Modern news written for these tests, with the regions a foreign-policy desk would file each under.

``SHORT``: one- or two-sentence items naming places, leaders, groups and conflicts of the 2020s that a 1987
wire corpus never saw. ``regions`` is every region the story is about, ``primary`` the one it is mostly about.

``LONG``: articles of several paragraphs, as a publication in ``home`` writes them, whose home country is
mentioned in passing (a reaction from its capital, a line about its envoy). ``regions`` and ``primary`` are
what the model should say without a home; ``home_regions`` and ``home_primary`` with ``home`` set, where the
home alone makes no region but a story about the home and a neighbour (US-Mexico, US-Canada) keeps it.
"""

from __future__ import annotations

from typing import NamedTuple

AF, AP, EU, LA, ME, NA = (
    "Africa",
    "Asia-Pacific",
    "Europe",
    "Latin America",
    "Middle East",
    "North America",
)


class Short(NamedTuple):
    key: str
    text: str
    regions: tuple[str, ...]
    primary: str


class Long(NamedTuple):
    key: str
    home: str
    paragraphs: tuple[str, ...]
    regions: tuple[str, ...]
    primary: str
    home_regions: tuple[str, ...]
    home_primary: str | None

    @property
    def text(self) -> str:
        return "\n\n".join(self.paragraphs)


SHORT = [
    # the three of the issue
    Short("caracas-protests", "Protests spread across Caracas.", (LA,), LA),
    Short("modi-xi", "Indian Prime Minister Narendra Modi met Chinese President Xi Jinping", (AP,), AP),
    Short(
        "venezuelan-boat",
        "US forces struck a Venezuelan boat in the Caribbean, killing 11 people the Pentagon said were drug "
        "traffickers.",
        (LA, NA),
        LA,
    ),
    # Latin America
    Short(
        "sheinbaum-tariffs",
        "Claudia Sheinbaum said Mexico would not retaliate against the new tariffs.",
        (LA,),
        LA,
    ),
    Short("milei-peso", "Javier Milei's government lifted most currency controls on the peso.", (LA,), LA),
    Short(
        "petro-ecopetrol",
        "Gustavo Petro replaced the head of Ecopetrol for the third time this year.",
        (LA,),
        LA,
    ),
    Short("bukele-cecot", "Nayib Bukele offered to hold more deportees in the CECOT mega-prison.", (LA,), LA),
    Short(
        "noboa-gangs",
        "Daniel Noboa declared a state of emergency in seven provinces as gang violence rose.",
        (LA,),
        LA,
    ),
    Short(
        "lula-amazon", "Lula opened the COP30 climate summit in Belem at the mouth of the Amazon.", (LA,), LA
    ),
    Short("haiti-gangs", "Gangs took control of another district of Port-au-Prince, the UN said.", (LA,), LA),
    # Asia-Pacific
    Short("takaichi-elected", "Sanae Takaichi became Japan's first female prime minister.", (AP,), AP),
    Short(
        "lee-jae-myung",
        "Lee Jae-myung was sworn in as South Korea's president after a snap election.",
        (AP,),
        AP,
    ),
    Short(
        "lai-drills",
        "Chinese warships circled Taiwan a day after Lai Ching-te spoke of sovereignty.",
        (AP,),
        AP,
    ),
    Short(
        "prabowo-protests",
        "Prabowo Subianto cancelled a trip abroad as riots spread across Jakarta.",
        (AP,),
        AP,
    ),
    Short(
        "kim-missile",
        "Kim Jong Un oversaw the launch of a new hypersonic missile, state media said.",
        (AP,),
        AP,
    ),
    Short("albanese-aukus", "Anthony Albanese defended the AUKUS submarine deal in Canberra.", (AP,), AP),
    Short("myanmar-quake", "A magnitude 7.7 earthquake struck near Mandalay, killing thousands.", (AP,), AP),
    Short(
        "kabul-water",
        "Kabul could become the first modern capital to run out of water, a report warned.",
        (AP,),
        AP,
    ),
    # Europe
    Short(
        "zelenskyy-drones",
        "Zelenskyy said Russian drones hit energy sites in Kharkiv and Odesa overnight.",
        (EU,),
        EU,
    ),
    Short(
        "merz-coalition", "Friedrich Merz won a second vote in the Bundestag to become chancellor.", (EU,), EU
    ),
    Short(
        "starmer-budget",
        "Keir Starmer defended the budget as Downing Street faced a backbench revolt.",
        (EU,),
        EU,
    ),
    Short("macron-pm", "Emmanuel Macron named his fifth prime minister in two years.", (EU,), EU),
    Short("orban-veto", "Viktor Orban threatened to veto new sanctions on Moscow.", (EU,), EU),
    Short("tusk-border", "Donald Tusk ordered checks on the border with Germany and Lithuania.", (EU,), EU),
    Short("kremlin-talks", "The Kremlin said Putin was ready to meet Zelenskyy only in Moscow.", (EU,), EU),
    Short(
        "meloni-albania",
        "Giorgia Meloni's migrant centres in Albania stood empty after another court ruling.",
        (EU,),
        EU,
    ),
    # Middle East
    Short(
        "netanyahu-gaza",
        "Netanyahu said Israeli troops would stay in parts of Gaza after the ceasefire.",
        (ME,),
        ME,
    ),
    Short(
        "houthis-red-sea", "The Houthis claimed an attack on a Greek-owned tanker in the Red Sea.", (ME,), ME
    ),
    Short("irgc-drill", "The IRGC held naval drills near the Strait of Hormuz.", (ME,), ME),
    Short(
        "sharaa-damascus",
        "Syria's interim president Ahmed al-Sharaa met Druze leaders in Damascus.",
        (ME,),
        ME,
    ),
    Short(
        "hezbollah-disarm",
        "Lebanon's cabinet asked the army to draw up a plan to disarm Hezbollah.",
        (ME,),
        ME,
    ),
    Short(
        "erdogan-imamoglu",
        "Erdogan's main rival was jailed, setting off the largest protests in Istanbul in a decade.",
        (ME,),
        ME,
    ),
    Short(
        "pezeshkian-iaea", "Masoud Pezeshkian said Tehran would suspend cooperation with the IAEA.", (ME,), ME
    ),
    # Africa
    Short("m23-goma", "M23 rebels took control of Goma airport after days of fighting.", (AF,), AF),
    Short(
        "rsf-el-fasher",
        "The Rapid Support Forces seized El Fasher, the army's last stronghold in Darfur.",
        (AF,),
        AF,
    ),
    Short("al-shabaab-mogadishu", "Al-Shabaab fighters attacked a hotel in Mogadishu.", (AF,), AF),
    Short(
        "ramaphosa-g20",
        "Cyril Ramaphosa hosted the first G20 summit on African soil in Johannesburg.",
        (AF,),
        AF,
    ),
    Short("tinubu-coup", "Bola Tinubu's government denied reports of a foiled coup in Abuja.", (AF,), AF),
    Short("kagame-tshisekedi", "Paul Kagame and Felix Tshisekedi signed a peace accord.", (AF,), AF),
    Short(
        "ruto-protests",
        "Police fired tear gas at Gen Z protesters marching on parliament in Nairobi.",
        (AF,),
        AF,
    ),
    # North America
    Short("carney-election", "Mark Carney's Liberals won Canada's federal election.", (NA,), NA),
    Short("ottawa-tariffs", "Ottawa imposed counter-tariffs on American steel and aluminium.", (NA,), NA),
    Short("trump-tariffs", "Trump announced tariffs on all imported cars, the White House said.", (NA,), NA),
    # two regions
    Short("putin-alaska", "Putin and Trump met in Alaska for talks on Ukraine.", (EU, NA), EU),
    Short("xi-lula", "Xi Jinping and Lula agreed to expand trade in yuan and reais.", (AP, LA), AP),
]


LONG = [
    Long(
        "sudan-famine",
        "US",
        (
            "Famine has spread to new areas of Sudan's Darfur and Kordofan regions, a UN-backed panel said on "
            "Tuesday, as fighting between the army and the Rapid Support Forces entered its third year. Aid "
            "convoys have been stopped for weeks outside El Fasher, where hundreds of thousands are trapped.",
            "The panel said children under five were dying at twice the famine threshold in several camps. "
            "Doctors in Tawila described wards without medicine and families walking for days to reach them, "
            "some after fleeing massacres in villages the militia had overrun.",
            "The army's government in Port Sudan blamed the RSF for blocking the roads; the paramilitary "
            "accused the army of bombing markets. Egypt and the African Union have called for a ceasefire, "
            "and talks in Jeddah have stalled since the spring.",
            "In Washington, a State Department spokesman said the administration was reviewing further "
            "sanctions. Relief agencies said they had received less than a fifth of the money they asked for "
            "this year, and warned that the rainy season would cut off the last open routes within weeks.",
        ),
        (AF,),
        AF,
        (AF,),
        AF,
    ),
    Long(
        "gaza-aid",
        "US",
        (
            "Israel reopened the Kerem Shalom crossing into Gaza on Sunday after a two-day closure, letting in "
            "dozens of lorries of flour and medical supplies, the Israeli military body in charge of civilian "
            "affairs said. Hamas accused Israel of breaking the ceasefire with strikes in Khan Younis.",
            "Hospital officials in Gaza said at least 20 people had been killed since Friday. The Israeli army "
            "said it had targeted militants who approached its troops near the line it withdrew to under the "
            "deal. Families returning to Gaza City found whole streets flattened.",
            "Egyptian and Qatari mediators were in Cairo to press both sides to move to the second phase of "
            "the agreement, which foresees a technocratic administration for the strip and an international "
            "stabilisation force. Netanyahu said Israel would not withdraw further until the remaining "
            "hostages' bodies were returned.",
            "The White House said its envoy would travel to the region next week. Aid groups said the number "
            "of lorries was still far below the 600 a day the agreement promised, and that winter rain had "
            "flooded tents in Deir al-Balah.",
        ),
        (ME,),
        ME,
        (ME,),
        ME,
    ),
    Long(
        "ukraine-energy",
        "US",
        (
            "Russia launched one of its largest drone and missile attacks of the war overnight, striking power "
            "plants and gas facilities across Ukraine and leaving millions without electricity as temperatures "
            "fell below freezing. Zelenskyy said more than 450 drones and 45 missiles were fired.",
            "Blackouts hit Kyiv, Kharkiv, Dnipro and Lviv. Ukrenergo, the grid operator, ordered rolling "
            "outages in every region, and the state gas company said production had been cut by a third after "
            "strikes on fields near Poltava.",
            "Poland scrambled jets as the attack unfolded near its border. European Union foreign ministers "
            "meeting in Brussels discussed using frozen Russian assets to fund Ukraine's budget next year, and "
            "Germany pledged more Patriot interceptors.",
            "A Pentagon official said earlier deliveries of air defence missiles were being reviewed. The "
            "Kremlin said the strikes were a response to Ukrainian attacks on Russian refineries.",
        ),
        (EU,),
        EU,
        (EU,),
        EU,
    ),
    Long(
        "taiwan-drills",
        "US",
        (
            "China's military began large-scale drills around Taiwan on Monday, sending warships and bombers "
            "to rehearse a blockade of the island's main ports, days after Lai Ching-te said the island's "
            "future must be decided by its people.",
            "Taiwan's defence ministry said it had tracked more than 70 aircraft and 20 naval vessels and put "
            "its forces on alert. The Chinese coast guard said it was conducting law enforcement patrols "
            "around the Matsu islands.",
            "Japan lodged a protest after a Chinese carrier group sailed between its southern islands, and the "
            "Philippines said its patrols in the South China Sea were shadowed by Chinese ships. Beijing "
            "called Lai a separatist and warned foreign governments against interference.",
            "Washington urged restraint. Analysts in Taipei said the exercises were the largest since 2022 and "
            "were meant to show that the People's Liberation Army could cut off the island's energy imports.",
        ),
        (AP,),
        AP,
        (AP,),
        AP,
    ),
    Long(
        "venezuela-strikes",
        "US",
        (
            "The US military struck another boat off Venezuela's coast on Thursday, killing six people, the "
            "Pentagon said, the latest in a campaign of strikes in the Caribbean that the administration says "
            "targets drug traffickers.",
            "Venezuela's government called the strikes extrajudicial killings and said Maduro had put the "
            "armed forces on alert. Relatives in the fishing town of Guiria said some of those killed were "
            "fishermen. Colombia's president Gustavo Petro said one victim was a Colombian citizen.",
            "Trinidad and Tobago, whose coast lies a few miles from Venezuela, backed the strikes, while "
            "Mexico and Brazil called for an investigation. Caracas has moved troops to the coast and held "
            "militia drills in several states.",
            "Lawmakers in Washington questioned the legal basis for the campaign, and a Navy admiral in charge "
            "of the region retired early, reportedly after disagreeing with it.",
        ),
        (LA, NA),
        LA,
        (LA,),
        LA,
    ),
    Long(
        "usmca-review",
        "US",
        (
            "US and Mexican negotiators opened the formal review of the USMCA trade agreement in Mexico City "
            "on Monday, with Washington pressing for tighter rules of origin for cars and limits on Chinese "
            "investment in Mexican factories.",
            "Claudia Sheinbaum said Mexico would defend its steel and auto industries and would not accept "
            "quotas. Mexican officials said they had already raised tariffs on imports from countries without "
            "trade deals, a measure aimed at China.",
            "Trade between the two countries exceeded $800 billion last year. Business groups in Monterrey "
            "and in Texas warned that uncertainty over the review was delaying investment along the border.",
            "Canada's trade minister is due to join the talks next month. The agreement must be renewed by "
            "July or it will expire in 2036 unless extended.",
        ),
        (LA, NA),
        NA,
        (LA, NA),
        NA,
    ),
    Long(
        "us-canada-lumber",
        "US",
        (
            "Canada and the United States failed to reach a deal on softwood lumber on Friday, as new US "
            "duties on Canadian wood took effect and sawmills in British Columbia announced further "
            "closures.",
            "Mark Carney said Ottawa would support forestry workers with loans and retraining and would "
            "challenge the duties under the trade agreement. Union leaders in Quebec said thousands of jobs "
            "were at risk.",
            "Home builders in the US said the duties would push up the price of houses. The Commerce "
            "Department said Canadian lumber was unfairly subsidised, a charge Ottawa has rejected for four "
            "decades.",
            "Talks are expected to resume after the Canadian parliament returns in the autumn.",
        ),
        (NA,),
        NA,
        (NA,),
        NA,
    ),
    Long(
        "india-pakistan",
        "US",
        (
            "India and Pakistan agreed to a ceasefire on Saturday after four days of missile and drone strikes "
            "across their border, the most serious fighting between the nuclear-armed neighbours in decades.",
            "The clashes began after India struck what it called terrorist camps in Pakistan and Pakistani "
            "Kashmir in retaliation for the killing of 26 tourists at Pahalgam. Pakistan said civilians were "
            "killed in the strikes and shot down several Indian jets.",
            "Shelling along the Line of Control forced thousands of families from their homes. Modi said "
            "India had shown it would respond to any attack, while Shehbaz Sharif thanked Saudi Arabia and "
            "Iran for their mediation.",
            "A US official said the secretary of state had spoken to both governments. Markets in Mumbai and "
            "Karachi rose on Monday as the ceasefire held.",
        ),
        (AP,),
        AP,
        (AP,),
        AP,
    ),
    Long(
        "drc-peace",
        "US",
        (
            "The foreign ministers of the Democratic Republic of Congo and Rwanda signed a peace agreement on "
            "Friday meant to end years of fighting in eastern Congo, where the M23 rebel group seized the "
            "cities of Goma and Bukavu this year.",
            "The deal commits Rwanda to withdraw its troops and Congo to act against the FDLR militia. M23, "
            "which is negotiating separately with Kinshasa in Doha, was not a party to it, and fighting "
            "continued in South Kivu on Saturday.",
            "Felix Tshisekedi said the agreement opened a new chapter for the Great Lakes region. Paul Kagame "
            "said security guarantees for Rwanda had to come first. Qatar and the African Union have offered "
            "to monitor the withdrawal.",
            "The signing took place in Washington, where officials spoke of American investment in Congo's "
            "cobalt and copper mines once the fighting ends.",
        ),
        (AF,),
        AF,
        (AF,),
        AF,
    ),
    Long(
        "iran-nuclear",
        "US",
        (
            "Iran said on Wednesday it would resume talks with the International Atomic Energy Agency on "
            "access to its nuclear sites, months after Israeli and US strikes damaged facilities at Fordow, "
            "Natanz and Isfahan.",
            "Masoud Pezeshkian told parliament in Tehran that cooperation would depend on guarantees that the "
            "sites would not be attacked again. Hardliners in the Majlis have called for leaving the Non-"
            "Proliferation Treaty.",
            "France, Germany and Britain triggered the return of UN sanctions in September. Oman and Qatar "
            "have offered to host new talks, and Saudi Arabia's foreign minister visited Tehran last week.",
            "The IAEA's director said inspectors had not been able to verify Iran's stock of highly enriched "
            "uranium since June. A spokesman in Washington said diplomacy remained possible.",
        ),
        (ME,),
        ME,
        (ME,),
        ME,
    ),
    Long(
        "kenya-protests",
        "GB",
        (
            "Kenyan police fired live rounds and tear gas at protesters in Nairobi on Tuesday as tens of "
            "thousands marched on the anniversary of last year's storming of parliament. Rights groups said at "
            "least 16 people were killed.",
            "Demonstrators in Mombasa, Kisumu and Nakuru blocked roads and chanted against William Ruto, whom "
            "they accuse of tolerating police killings. The government ordered television stations to stop "
            "live coverage, an order a court later suspended.",
            "The interior minister said the protests had been infiltrated by criminals. The Law Society of "
            "Kenya said the police had shot people who posed no threat.",
            "The Foreign Office in London urged restraint and said it was following the situation closely. "
            "British nationals were advised to avoid the centre of Nairobi.",
        ),
        (AF,),
        AF,
        (AF,),
        AF,
    ),
    Long(
        "french-government",
        "GB",
        (
            "France's prime minister resigned on Monday, less than a month after taking office, plunging the "
            "country into a new political crisis as parties in the National Assembly refused to back his "
            "budget.",
            "Emmanuel Macron asked him to hold talks with party leaders for two more days. Marine Le Pen's "
            "National Rally called for early elections, and the Socialists demanded a suspension of the "
            "pension reform.",
            "French borrowing costs rose above those of Italy for the first time. Economists in Paris said a "
            "budget was unlikely to be passed before the end of the year.",
            "The pound rose against the euro in London trading as investors weighed the crisis across the "
            "Channel.",
        ),
        (EU,),
        EU,
        (EU,),
        EU,
    ),
]
