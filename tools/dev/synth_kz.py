"""Kazakhstan's flavour of synthetic children: district weights, given names, phone prefix.

:mod:`tools.dev.synth` draws children for whichever country profile is installed; the
Azerbaijani weights and names live there, these are Kazakhstan's (``childreg synth
--country kz``). Every value is invented or a rounded public order of magnitude.
"""

from __future__ import annotations

from typing import Final

#: Rough resident population in thousands (order of magnitude of the 2024 official
#: estimates, rounded, not a statistic), per unit of the KZ profile: each region's cities
#: of regional significance and districts, and the city districts of Astana, Almaty and
#: Shymkent.
DISTRICT_WEIGHTS: Final[dict[str, int]] = {
    # Abai Region
    "semey": 320, "kurchatov": 10, "abai_abai": 17, "abai_aksuat": 22, "abai_ayagoz": 70,
    "abai_beskaragai": 19, "abai_borodulikha": 35, "abai_zharma": 35, "abai_zhanasemey": 30,
    "abai_kokpekty": 16, "abai_makanshy": 25, "abai_urzhar": 55,
    # Akmola Region
    "kokshetau": 180, "stepnogorsk": 65, "kosshy": 60, "akmola_akkol": 25,
    "akmola_arshaly": 30, "akmola_astrakhan": 20, "akmola_atbasar": 40,
    "akmola_birzhan_sal": 15, "akmola_bulandy": 25, "akmola_burabay": 70,
    "akmola_egindykol": 6, "akmola_ereymentau": 20, "akmola_esil": 20, "akmola_zhaksy": 15,
    "akmola_zharkain": 14, "akmola_zerendi": 35, "akmola_korgalzhyn": 9,
    "akmola_sandyktau": 15, "akmola_tselinograd": 90, "akmola_shortandy": 30,
    # Aktobe Region
    "aktobe_city": 590, "aktobe_aiteke_bi": 30, "aktobe_alga": 40, "aktobe_baiganin": 23,
    "aktobe_kargaly": 16, "aktobe_kobda": 17, "aktobe_martuk": 30, "aktobe_mugalzhar": 70,
    "aktobe_oiyl": 12, "aktobe_temir": 30, "aktobe_khromtau": 45, "aktobe_shalkar": 27,
    "aktobe_yrgyz": 15,
    # Almaty Region
    "konaev": 100, "alatau": 30, "almaty_region_balkhash": 30,
    "almaty_region_enbekshikazakh": 300, "almaty_region_zhambyl": 140,
    "almaty_region_ile": 200, "almaty_region_karasay": 350, "almaty_region_kegen": 30,
    "almaty_region_raiymbek": 55, "almaty_region_talgar": 250, "almaty_region_uigur": 65,
    # Atyrau Region
    "atyrau_city": 370, "atyrau_zhylyoi": 80, "atyrau_inder": 32, "atyrau_isatay": 27,
    "atyrau_kurmangazy": 60, "atyrau_kyzylkoga": 30, "atyrau_makat": 30,
    "atyrau_makhambet": 35,
    # East Kazakhstan Region
    "oskemen": 360, "ridder": 60, "east_kazakhstan_altai": 65, "east_kazakhstan_glubokoe": 55,
    "east_kazakhstan_zaisan": 38, "east_kazakhstan_katonkaragai": 17,
    "east_kazakhstan_kurshim": 23, "east_kazakhstan_markakol": 10, "east_kazakhstan_samar": 10,
    "east_kazakhstan_tarbagatai": 28, "east_kazakhstan_ulan": 35,
    "east_kazakhstan_ulken_naryn": 12, "east_kazakhstan_shemonaikha": 40,
    # Jambyl Region
    "taraz": 430, "jambyl_baizak": 100, "jambyl_zhambyl": 85, "jambyl_zhualy": 45,
    "jambyl_kordai": 135, "jambyl_merke": 85, "jambyl_moiynkum": 35, "jambyl_sarysu": 40,
    "jambyl_talas": 55, "jambyl_turar_ryskulov": 70, "jambyl_shu": 120,
    # Jetisu Region
    "taldykorgan": 200, "tekeli": 30, "jetisu_aksu": 40, "jetisu_alakol": 75,
    "jetisu_eskeldi": 50, "jetisu_karatal": 45, "jetisu_kerbulak": 50, "jetisu_koksu": 40,
    "jetisu_panfilov": 120, "jetisu_sarkand": 40,
    # Karaganda Region
    "karaganda_city": 510, "balkhash": 80, "priozersk": 12, "saran": 50, "temirtau": 180,
    "shakhtinsk": 55, "karaganda_abai": 50, "karaganda_aktogay": 15,
    "karaganda_bukhar_zhyrau": 60, "karaganda_karkaraly": 35, "karaganda_nura": 25,
    "karaganda_osakarovka": 30, "karaganda_shet": 40,
    # Kostanay Region
    "kostanay_city": 260, "rudny": 130, "lisakovsk": 40, "arkalyk": 40,
    "kostanay_altynsarin": 15, "kostanay_amangeldi": 15, "kostanay_auliekol": 40,
    "kostanay_beimbet_mailin": 25, "kostanay_denisov": 17, "kostanay_zhangeldi": 12,
    "kostanay_zhitikara": 45, "kostanay_kamysty": 15, "kostanay_karabalyk": 25,
    "kostanay_karasu": 20, "kostanay_kostanay": 60, "kostanay_mendykara": 25,
    "kostanay_naurzum": 6, "kostanay_sarykol": 18, "kostanay_uzunkol": 18,
    "kostanay_fedorov": 22,
    # Kyzylorda Region
    "kyzylorda_city": 330, "kyzylorda_aral": 80, "kyzylorda_zhalagash": 35,
    "kyzylorda_zhanakorgan": 80, "kyzylorda_kazaly": 80, "kyzylorda_karmakshy": 50,
    "kyzylorda_syrdarya": 35, "kyzylorda_shieli": 80,
    # Mangystau Region
    "aktau": 270, "zhanaozen": 170, "mangystau_beineu": 75, "mangystau_karakiya": 50,
    "mangystau_mangystau": 40, "mangystau_munaily": 200, "mangystau_tupkaragan": 35,
    # North Kazakhstan Region
    "petropavl": 220, "north_kazakhstan_aiyrtau": 33, "north_kazakhstan_akzhar": 14,
    "north_kazakhstan_akkayin": 17, "north_kazakhstan_esil": 15,
    "north_kazakhstan_zhambyl": 17, "north_kazakhstan_magzhan_zhumabayev": 32,
    "north_kazakhstan_kyzylzhar": 43, "north_kazakhstan_mamlyut": 15,
    "north_kazakhstan_gabit_musrepov": 35, "north_kazakhstan_taiynsha": 36,
    "north_kazakhstan_timiryazev": 11, "north_kazakhstan_ualikhanov": 14,
    "north_kazakhstan_shal_akyn": 14,
    # Pavlodar Region
    "pavlodar_city": 370, "aksu": 65, "ekibastuz": 150, "pavlodar_aktogay": 12,
    "pavlodar_akkuly": 10, "pavlodar_bayanaul": 22, "pavlodar_zhelezin": 15,
    "pavlodar_irtysh": 17, "pavlodar_may": 8, "pavlodar_pavlodar": 25, "pavlodar_terenkol": 22,
    "pavlodar_uspen": 12, "pavlodar_sharbakty": 20,
    # Turkistan Region
    "turkistan_city": 230, "arys": 90, "kentau": 80, "turkistan_baidibek": 55,
    "turkistan_zhetysai": 190, "turkistan_kazygurt": 120, "turkistan_keles": 150,
    "turkistan_maktaaral": 150, "turkistan_ordabasy": 140, "turkistan_otrar": 60,
    "turkistan_sairam": 340, "turkistan_saryagash": 220, "turkistan_sauran": 70,
    "turkistan_sozak": 65, "turkistan_tole_bi": 130, "turkistan_tulkibas": 110,
    "turkistan_shardara": 85,
    # Ulytau Region
    "zhezkazgan": 90, "satpayev": 70, "karazhal": 17, "ulytau_zhanaarka": 30,
    "ulytau_ulytau": 13,
    # West Kazakhstan Region
    "oral": 330, "west_kazakhstan_akzhaik": 40, "west_kazakhstan_baiterek": 60,
    "west_kazakhstan_bokey_orda": 15, "west_kazakhstan_burli": 55,
    "west_kazakhstan_zhanibek": 15, "west_kazakhstan_zhangala": 15,
    "west_kazakhstan_kaztalov": 30, "west_kazakhstan_karatobe": 15,
    "west_kazakhstan_syrym": 20, "west_kazakhstan_taskala": 15, "west_kazakhstan_terekti": 45,
    "west_kazakhstan_shyngyrlau": 11,
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
