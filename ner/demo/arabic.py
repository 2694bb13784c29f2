"""The Arabic demo language: names, gazetteers, templates, fragments, entity-free sentences.

Written as WikiANN tokenises Arabic: punctuation ("،", ".", ":", "(", ")") as separate tokens,
clitics attached to their word ("والتقى", "للعيش"). Prepositions before an entity are separate
words ("في مدينة {CITY}", "مع {PER}"), so that entity tokens stay the gazetteer's tokens.

About half of every list names the same real-world entities as the Hebrew set
(ner/demo/hebrew.py), transliterated: SHARED_WITH_HEBREW below, {Arabic: Hebrew} by slot type.
The rest are Arabic-only, and one is in Latin script ("IBM"), as in Arabic Wikipedia.

Context matters a little: "القاهرة" and "تل أبيب" are locations alone but part of an organisation
in "جامعة القاهرة" and "مكابي تل أبيب"; "مصر" is a country but part of the company
"مصر للطيران"; "علي" and "داود" are first names but also parts of the surnames "بن علي" and
"بن داود".
"""

# Shared entities, {Arabic: Hebrew}; "FIRST_m"/"FIRST_f"/"LAST" are person names, the other keys
# slot types. tests/test_demo_data.py checks that every Hebrew form is in the Hebrew set.
SHARED_WITH_HEBREW: dict[str, dict[str, str]] = {
    "FIRST_m": {"داود": "דוד", "موسى": "משה", "يوسف": "יוסף", "إبراهيم": "אברהם", "إسحاق": "יצחק"},
    "FIRST_f": {"سارة": "שרה", "راحيل": "רחל", "تمار": "תמר", "ياعيل": "יעל", "نوعا": "נועה"},
    "LAST": {
        "كوهين": "כהן",
        "ليفي": "לוי",
        "مزراحي": "מזרחי",
        "بيرتس": "פרץ",
        "بيتون": "ביטון",
        "فريدمان": "פרידמן",
        "شابيرا": "שפירא",
        "غولدبرغ": "גולדברג",
        "حداد": "חדד",
        "بن داود": "בן דוד",
    },
    "CITY": {
        "القدس": "ירושלים",
        "تل أبيب": "תל אביב",
        "حيفا": "חיפה",
        "بئر السبع": "באר שבע",
        "الناصرة": "נצרת",
        "عكا": "עכו",
        "طبريا": "טבריה",
        "نيويورك": "ניו יורק",
        "لندن": "לונדון",
        "باريس": "פריז",
    },
    "COUNTRY": {
        "إسرائيل": "ישראל",
        "مصر": "מצרים",
        "الأردن": "ירדן",
        "فرنسا": "צרפת",
        "ألمانيا": "גרמניה",
        "الولايات المتحدة": "ארצות הברית",
    },
    "REGION": {
        "الجليل": "הגליל",
        "النقب": "הנגב",
        "هضبة الجولان": "רמת הגולן",
        "البحر الميت": "ים המלח",
    },
    "CLUB": {
        "مكابي تل أبيب": "מכבי תל אביב",
        "هبوعيل القدس": "הפועל ירושלים",
        "هبوعيل بئر السبع": "הפועל באר שבע",
        "بيتار القدس": 'בית"ר ירושלים',
        "مكابي حيفا": "מכבי חיפה",
    },
    "PARTY": {"الليكود": "הליכוד", "حزب العمل": "מפלגת העבודה", "ميرتس": "מרצ", "شاس": 'ש"ס'},
    "UNI": {
        "الجامعة العبرية": "האוניברסיטה העברית",
        "جامعة تل أبيب": "אוניברסיטת תל אביב",
        "التخنيون": "הטכניון",
        "معهد وايزمان": "מכון ויצמן",
    },
    "COMPANY": {
        "إنتل": "אינטל",
        "غوغل": "גוגל",
        "مايكروسوفت": "מיקרוסופט",
        "تيفا": "טבע",
        "إل عال": "אל על",
    },
    "PAPER": {"يديعوت أحرونوت": "ידיעות אחרונות", "هآرتس": "הארץ", "معاريف": "מעריב"},
}
_ARABIC_ONLY: dict[str, list[str]] = {
    "FIRST_m": ["محمد", "أحمد", "علي", "خالد", "عمر"],
    "FIRST_f": ["فاطمة", "مريم", "ليلى", "هدى", "رنا"],
    "LAST": [
        "الخطيب",
        "منصور",
        "عبد الله",
        "بن علي",
        "المصري",
        "نصر الله",
        "الحسيني",
        "الشامي",
        "أبو زيد",
        "سعيد",
    ],
    "CITY": [
        "القاهرة",
        "الإسكندرية",
        "عمان",
        "بيروت",
        "دمشق",
        "بغداد",
        "الرياض",
        "الدار البيضاء",
        "دبي",
        "حلب",
    ],
    "COUNTRY": ["لبنان", "سوريا", "العراق", "المغرب", "الجزائر", "المملكة العربية السعودية"],
    "REGION": ["سيناء", "دلتا النيل", "البقاع"],
    "CLUB": ["الأهلي", "الزمالك", "الهلال", "الوحدات", "الرجاء البيضاوي"],
    "PARTY": ["حزب الوفد", "حزب البعث", "حزب الاستقلال", "جبهة التحرير الوطني"],
    "UNI": ["جامعة القاهرة", "جامعة الأزهر", "الجامعة الأردنية", "الجامعة الأمريكية في بيروت"],
    "COMPANY": ["أرامكو السعودية", "مصر للطيران", "طيران الإمارات", "سابك", "IBM"],
    "PAPER": ["الأهرام", "الشرق الأوسط", "القدس العربي"],
}


def _names(kind: str) -> list[str]:
    return [*SHARED_WITH_HEBREW[kind], *_ARABIC_ONLY[kind]]


# First names by grammatical gender: Arabic verbs, adjectives and possessives agree with the
# person. Surnames do not inflect; multi-word ones ("عبد الله") give three-token persons.
FIRST_NAMES = {"m": _names("FIRST_m"), "f": _names("FIRST_f")}
LAST_NAMES = _names("LAST")
GAZETTEER: dict[str, list[str]] = {
    kind: _names(kind)
    for kind in ("CITY", "COUNTRY", "REGION", "CLUB", "PARTY", "UNI", "COMPANY", "PAPER")
}

# Numbers ({NUM}, 2 to 99) only where any of them reads correctly ("{NUM} في المئة"): Arabic
# counted nouns change form with the number. Clubs are masculine (نادٍ), so their verbs are fixed;
# companies take the feminine (شركة), as in Arabic news. Verbs whose subject is a country or a
# party are avoided ("حكومة {COUNTRY}"), as those names differ in gender.
TEMPLATES = [
    "ولد^ولدت {PER} في عام {YEAR} في مدينة {CITY} .",
    "{PER} سياسي^سياسية ، عضو^عضوة في البرلمان عن {PARTY} .",
    "لعب^لعبت {PER} في صفوف {CLUB} من عام {YEAR} إلى عام {YEAR} .",
    "{CITY} مدينة تقع في منطقة {REGION} .",
    "{PER} ، خريج^خريجة {UNI} ، يقيم^تقيم حاليا في مدينة {CITY} .",
    "افتتحت {COMPANY} فرعا جديدا في مدينة {CITY} .",
    "{COMPANY} شركة يقع مقرها في مدينة {CITY} .",
    "في عام {YEAR} انتقل^انتقلت {PER} للعيش في مدينة {CITY} .",
    "اجتمع^اجتمعت {PER} مع {PER} في مدينة {CITY} .",
    "فاز {CLUB} على {CLUB} بنتيجة {GOALS} مقابل {GOALS} .",
    "أقيمت مباراة {CLUB} ضد {CLUB} على الملعب البلدي .",
    "تولى^تولت {PER} رئاسة {UNI} في عام {YEAR} .",
    "{PER} ( {YEAR} - {YEAR} ) كاتب^كاتبة وشاعر^وشاعرة .",
    "وقعت حكومة {COUNTRY} اتفاقية تعاون مع حكومة {COUNTRY} .",
    "{PER} ، رئيس^رئيسة {PARTY} ، أعلن^أعلنت اعتزاله^اعتزالها العمل السياسي .",
    "وفقا للإحصاءات ، ارتفع عدد سكان مدينة {CITY} بنسبة {NUM} في المئة .",
    "أقيم مؤتمر {UNI} السنوي هذا العام في مدينة {CITY} .",
    "وقع^وقعت {PER} عقدا جديدا مع {CLUB} حتى عام {YEAR} .",
    "استحوذت {COMPANY} على حصة نسبتها {NUM} في المئة من أسهم {COMPANY} .",
    "ستبدأ الرحلات المباشرة من {CITY} إلى {CITY} الشهر المقبل .",
    "شغل^شغلت {PER} منصب سفير^سفيرة {COUNTRY} في {CITY} .",
    "يقع المتحف الوطني في وسط مدينة {CITY} .",
    "{REGION} منطقة جغرافية في شمال {COUNTRY} .",
    "تظاهر سكان {CITY} احتجاجا على قرار {ORG} .",
    "نشر^نشرت {PER} مقالا في صحيفة {PAPER} .",
    "يقع مقر {COMPANY} في مدينة {CITY} ، بالقرب من {CITY} .",
    "فاز^فازت {PER} بجائزة عن كتابه^كتابها الأول في عام {YEAR} .",
    "زار^زارت {PER} الأسبوع الماضي مدينة {CITY} والتقى^والتقت رئيس البلدية .",
    "فاز {CLUB} ببطولة الدوري في موسم {YEAR} .",
    "التقى رئيس الوزراء مع {PER} ، وزير^وزيرة خارجية {COUNTRY} .",
    "بحسب {PER} ، سيمتد نشاط {ORG} إلى منطقة {REGION} .",
    "الدور من أداء الممثل^الممثلة {PER} .",
    "أسس^أسست {PER} شركة {COMPANY} مع {PER} في عام {YEAR} .",
    "درس^درست {PER} الطب في {UNI} .",
]
# WikiANN-like fragments: a lone name, "see also", a redirect ("تحويل"), a name with years, a
# disambiguated title, a name in wiki bold quotes.
FRAGMENTS = [
    "{PER}",
    "{ORG}",
    "{LOC}",
    "انظر أيضا : {LOC}",
    "انظر أيضا : {PER}",
    "{CITY} ( {COUNTRY} )",
    "{PER} ( {YEAR} - {YEAR} )",
    "{CLUB} ( نادي كرة قدم )",
    "{UNI} ، {CITY}",
    "قائمة رؤساء بلدية {CITY}",
    "{PER} : سيرة ذاتية",
    "تحويل {PER}",
    "تحويل {ORG}",
    "' '' {LOC} '' '",
    "' '' {CLUB} '' '",
    "صفحة اللاعب على موقع {CLUB} الرسمي",
]
NO_ENTITY = [
    "انتهت المباراة بالتعادل .",
    "كان الطقس جميلا بشكل خاص .",
    "صدر الكتاب في عام {YEAR} .",
    "بلغ عدد حلقات الموسم {NUM} .",
    "يعد واحدا من أهم كتاب جيله .",
    "دمر المبنى بالكامل خلال الحرب .",
    "بلغت نسبة الحضور في المباراة {NUM} في المئة .",
    "تلقى الفيلم مراجعات إيجابية .",
    "أغلقت المحطة في عام {YEAR} ( بعد عقود من التشغيل ) .",
    "انظر أيضا :",
]
