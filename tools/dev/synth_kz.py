"""Kazakhstan's flavour of synthetic children: district weights, given names, phone prefix.

:mod:`tools.dev.synth` draws children for whichever country profile is installed; the
Azerbaijani weights and names live there, these are Kazakhstan's (``childreg synth
--country kz``). Every value is invented or a rounded public order of magnitude.
"""

from __future__ import annotations

from typing import Final

#: Rough resident population in thousands (order of magnitude of the 2024 official
#: estimates), per unit of the KZ profile: each region's centre and the rest of the region,
#: and the city districts of Astana, Almaty and Shymkent.
DISTRICT_WEIGHTS: Final[dict[str, int]] = {
    "semey": 350, "abai_districts": 250,
    "kokshetau": 180, "akmola_districts": 610,
    "aktobe_city": 590, "aktobe_districts": 340,
    "konaev": 100, "almaty_region_districts": 1430,
    "atyrau_city": 370, "atyrau_districts": 330,
    "oskemen": 360, "east_kazakhstan_districts": 360,
    "taraz": 430, "jambyl_districts": 790,
    "taldykorgan": 200, "jetisu_districts": 500,
    "karaganda_city": 510, "karaganda_districts": 620,
    "kostanay_city": 260, "kostanay_districts": 570,
    "kyzylorda_city": 330, "kyzylorda_districts": 500,
    "aktau": 270, "mangystau_districts": 520,
    "petropavl": 220, "north_kazakhstan_districts": 310,
    "pavlodar_city": 370, "pavlodar_districts": 380,
    "turkistan_city": 230, "turkistan_districts": 1870,
    "zhezkazgan": 90, "ulytau_districts": 130,
    "oral": 330, "west_kazakhstan_districts": 360,
    "astana_almaty": 280, "astana_baikonur": 250, "astana_yesil": 330,
    "astana_saryarka": 340, "astana_nura": 200,
    "almaty_alatau": 330, "almaty_almaly": 220, "almaty_auezov": 310,
    "almaty_bostandyk": 370, "almaty_zhetysu": 190, "almaty_medeu": 230,
    "almaty_nauryzbay": 230, "almaty_turksib": 260,
    "shymkent_abay": 300, "shymkent_al_farabi": 200, "shymkent_enbekshi": 280,
    "shymkent_karatau": 290, "shymkent_turan": 180,
}  # fmt: skip

MALE_NAMES: Final = (
    "Нұрлан", "Арман", "Данияр", "Ерлан", "Айбек", "Асқар", "Бауыржан", "Дәурен", "Ержан",
    "Алмас", "Тимур", "Әлихан", "Нұрсұлтан", "Руслан", "Санжар", "Мади", "Ансар", "Әлиби",
    "Бейбарыс", "Темірлан",
)  # fmt: skip
FEMALE_NAMES: Final = (
    "Айгерім", "Аружан", "Дана", "Жансая", "Айдана", "Камила", "Мадина", "Іңкәр", "Әсел",
    "Гүлназ", "Дильназ", "Жанерке", "Томирис", "Аяулым", "Самал", "Ақбота", "Інжу", "Меруерт",
    "Назерке", "Айша",
)  # fmt: skip
#: Visibly fake phone numbers: +7 000 555 …
PHONE_PREFIX: Final = "+7 000 555"
