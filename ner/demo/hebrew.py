"""The Hebrew demo language: names, gazetteers, templates, fragments, entity-free sentences.

Context matters a little: "תל אביב" is a location alone but part of an organisation in
"מכבי תל אביב"; "דוד" is a first name but also part of the surname "בן דוד".

The order of every list is part of the generated data (the generator draws by position): the
Hebrew demo set is pinned byte for byte (tests/test_demo_data.py), so edit only on purpose.
"""

# First names by grammatical gender: Hebrew verbs and adjectives agree with the person.
FIRST_NAMES = {
    "m": ["דוד", "משה", "יוסף", "אברהם", "יצחק", "יונתן", "עמית", "אבי", "איתן", "דניאל"],
    "f": ["שרה", "רחל", "מיכל", "נועה", "תמר", "יעל", "אורית", "שירה", "רותם", "הדס"],
}
# Two-word surnames ("בן דוד") give three-token persons: B-PER I-PER I-PER.
LAST_NAMES = [
    "כהן",
    "לוי",
    "מזרחי",
    "פרץ",
    "ביטון",
    "דהן",
    "פרידמן",
    "שפירא",
    "גולדברג",
    "אזולאי",
    "רוזנברג",
    "בן דוד",
    "אוחיון",
    "חדד",
    "ברק",
    "שטרן",
    "קפלן",
    "גבאי",
    "בן עמי",
    "וייס",
]

# Entity gazetteers by slot type (ner/demo/generate.py maps each to PER, ORG or LOC).
GAZETTEER: dict[str, list[str]] = {
    "CITY": [
        "ירושלים",
        "תל אביב",
        "חיפה",
        "באר שבע",
        "אילת",
        "נתניה",
        "חולון",
        "רמת גן",
        "ראשון לציון",
        "פתח תקווה",
        "טבריה",
        "נצרת",
        "עכו",
        "צפת",
        "ניו יורק",
        "לונדון",
        "פריז",
        "ברלין",
    ],
    "COUNTRY": [
        "ישראל",
        "מצרים",
        "ירדן",
        "צרפת",
        "גרמניה",
        "איטליה",
        "ספרד",
        "רוסיה",
        "ארצות הברית",
        "בריטניה",
        "יפן",
    ],
    "REGION": ["הגליל", "הנגב", "רמת הגולן", "עמק יזרעאל", "השרון", "ים המלח"],
    "CLUB": [
        "מכבי תל אביב",
        "הפועל ירושלים",
        "הפועל באר שבע",
        'בית"ר ירושלים',
        "מכבי חיפה",
        "בני סכנין",
    ],
    "PARTY": ["הליכוד", "מפלגת העבודה", "יש עתיד", "מרצ", 'ש"ס'],
    "UNI": [
        "האוניברסיטה העברית",
        "אוניברסיטת תל אביב",
        "הטכניון",
        "אוניברסיטת בן-גוריון",
        "מכון ויצמן",
    ],
    "COMPANY": ["בנק הפועלים", "בנק לאומי", "אל על", "טבע", "אינטל", "גוגל", "מיקרוסופט"],
    "PAPER": ["ידיעות אחרונות", "הארץ", "מעריב"],
}

# Prepositions are written as separate words ("בעיר {CITY}") so entity tokens stay the gazetteer's
# tokens. Verbs and adjectives agree with the first person ("נולד^נולדה").
TEMPLATES = [
    "{PER} נולד^נולדה בשנת {YEAR} בעיר {CITY} .",
    "{PER} הוא^היא פוליטיקאי^פוליטיקאית ישראלי^ישראלית , חבר^חברת כנסת מטעם {PARTY} .",
    "{PER} שיחק^שיחקה בקבוצת {CLUB} בשנים {YEAR} - {YEAR} .",
    "{CITY} היא עיר באזור {REGION} .",
    "{PER} , בוגר^בוגרת {UNI} , מתגורר^מתגוררת כיום בעיר {CITY} .",
    "החברה {COMPANY} פתחה סניף חדש בעיר {CITY} .",
    "{COMPANY} היא חברה שמרכזה בעיר {CITY} .",
    "בשנת {YEAR} עבר^עברה {PER} להתגורר בעיר {CITY} .",
    "{PER} נפגש^נפגשה עם {PER} בעיר {CITY} .",
    "{CLUB} ניצחה את {CLUB} בתוצאה {GOALS} : {GOALS} .",
    "המשחק בין {CLUB} לבין {CLUB} נערך באצטדיון העירוני .",
    "{PER} מונה^מונתה לנשיא^לנשיאת {UNI} בשנת {YEAR} .",
    "{PER} ( {YEAR} - {YEAR} ) היה^הייתה סופר^סופרת ומשורר^ומשוררת .",
    "יש גבול משותף בין {COUNTRY} לבין {COUNTRY} .",
    "{PER} , יושב^יושבת ראש {PARTY} , הודיע^הודיעה על פרישתו^פרישתה .",
    "לפי הנתונים , מספר התושבים בעיר {CITY} עומד על {NUM} אלף .",
    "הכנס השנתי של {UNI} נערך השנה בעיר {CITY} .",
    "{PER} חתם^חתמה על חוזה חדש עם {CLUB} עד שנת {YEAR} .",
    "{COMPANY} רכשה את {COMPANY} תמורת {NUM} מיליון דולר .",
    "טיסות ישירות בין {CITY} לבין {CITY} יחלו בחודש הבא .",
    "{PER} כיהן^כיהנה כשגריר^כשגרירת {COUNTRY} בעיר {CITY} .",
    "המוזיאון הלאומי נמצא במרכז העיר {CITY} .",
    "{REGION} הוא אזור גאוגרפי בצפון {COUNTRY} .",
    "תושבי {CITY} יצאו להפגין נגד החלטת {ORG} .",
    "{PER} פרסם^פרסמה מאמר בעיתון {PAPER} .",
    "מטה {COMPANY} נמצא בעיר {CITY} , ליד {CITY} .",
    "{PER} זכה^זכתה בפרס על ספרו^ספרה הראשון בשנת {YEAR} .",
    "{PER} ביקר^ביקרה בשבוע שעבר בעיר {CITY} ונפגש^ונפגשה עם ראש העירייה .",
    "{CLUB} זכתה באליפות בעונת {YEAR} .",
    "ראש הממשלה נפגש עם {PER} , שר החוץ של {COUNTRY} .",
    "לדברי {PER} , {ORG} תפעל גם באזור {REGION} .",
    "התפקיד מגולם על ידי השחקן^השחקנית {PER} .",
    "{PER} הקים^הקימה את {COMPANY} יחד עם {PER} בשנת {YEAR} .",
]
# WikiANN sentences are often title-like fragments: a lone name, "see also", a redirect, a name
# with a year, a name in wiki bold quotes (tokenised as "' ''" ... "'' '").
FRAGMENTS = [
    "{PER}",
    "{ORG}",
    "{LOC}",
    "ראו גם : {LOC}",
    "ראו גם : {PER}",
    "{CITY} ( {COUNTRY} )",
    "{PER} ( {YEAR} - {YEAR} )",
    "{CLUB} ( כדורגל )",
    "{UNI} , {CITY}",
    "רשימת ראשי העיר {CITY}",
    "{PER} : ביוגרפיה",
    "הפניה {PER}",
    "הפניה {ORG}",
    "' '' {LOC} '' '",
    "' '' {CLUB} '' '",
    "דף השחקן באתר הרשמי של {CLUB}",
]
NO_ENTITY = [
    "המשחק הסתיים בתיקו .",
    "מזג האוויר היה נאה במיוחד .",
    "הספר יצא לאור בשנת {YEAR} .",
    "העונה כללה {NUM} פרקים .",
    "הוא נחשב לאחד הסופרים החשובים בדורו .",
    "המבנה נהרס כליל במהלך המלחמה .",
    "במשחק השתתפו {NUM} אלף צופים .",
    "הסרט זכה לביקורות חיוביות .",
    "התחנה נסגרה בשנת {YEAR} ( לאחר {NUM} שנות פעילות ) .",
    "ראו גם :",
]
