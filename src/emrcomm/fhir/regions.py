"""Where a patient lives: country, ISO 3166-2 subdivision and IANA time zone.

Only Canada and the United States are known subdivision by subdivision (the clinics emrcomm is
written for), by the address's state, or without one by a Canadian postal code's first letter.
Elsewhere the jurisdiction stays unknown (None), and so does the time zone unless the country has
only one (France: Europe/Paris); with no zone the quiet-hours rule uses the most restrictive of
the clinic's own zones. A Canadian or US address without a province or state has no zone either.

A province or state that spans several zones gets the zone where most of its people live.
The choices, for review:

=========  =================================  ===================================================
region     zone used                          also in the region (not used)
=========  =================================  ===================================================
CA-BC      America/Vancouver                  America/Edmonton (Peace River), America/Creston
CA-NL      America/St_Johns                   America/Goose_Bay (Labrador)
CA-NU      America/Iqaluit (Qikiqtaaluk)      America/Rankin_Inlet, America/Cambridge_Bay
CA-ON      America/Toronto                    America/Winnipeg (north-west Ontario)
CA-QC      America/Toronto                    America/Halifax (Magdalen Islands), America/Blanc-Sablon
CA-SK      America/Regina                     America/Edmonton (Lloydminster)
US-AK      America/Anchorage                  America/Adak (Aleutians)
US-AZ      America/Phoenix                    America/Denver (Navajo Nation)
US-FL      America/New_York                   America/Chicago (panhandle west of the Apalachicola)
US-ID      America/Boise                      America/Los_Angeles (panhandle)
US-IN      America/Indiana/Indianapolis       America/Chicago (north-west and south-west corners)
US-KS      America/Chicago                    America/Denver (four western counties)
US-KY      America/New_York                   America/Chicago (western Kentucky)
US-MI      America/Detroit                    America/Menominee (four Upper Peninsula counties)
US-ND      America/Chicago                    America/Denver (south-west)
US-NE      America/Chicago                    America/Denver (panhandle)
US-NV      America/Los_Angeles                America/Denver (West Wendover)
US-OR      America/Los_Angeles                America/Boise (Malheur County)
US-SD      America/Chicago                    America/Denver (west river)
US-TN      America/Chicago (Nashville,        America/New_York (East Tennessee)
           Memphis)
US-TX      America/Chicago                    America/Denver (El Paso, Hudspeth)
=========  =================================  ===================================================
"""

from __future__ import annotations

import re
import unicodedata

import phonenumbers

DEFAULT_REGION = "CA"


def fold(text: str) -> str:
    """Case-folded, accents stripped, punctuation and spaces collapsed: "Île-du-Prince-Édouard" ->
    "ile du prince edouard"."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    words = "".join(c if c.isalnum() else " " for c in plain).split()
    return " ".join(words)


# code -> (IANA zone, names the code is written as besides itself)
CANADA: dict[str, tuple[str, tuple[str, ...]]] = {
    "AB": ("America/Edmonton", ("Alberta",)),
    "BC": ("America/Vancouver", ("British Columbia", "Colombie-Britannique")),
    "MB": ("America/Winnipeg", ("Manitoba",)),
    "NB": ("America/Moncton", ("New Brunswick", "Nouveau-Brunswick")),
    "NL": ("America/St_Johns", ("Newfoundland and Labrador", "Newfoundland", "Terre-Neuve-et-Labrador")),
    "NS": ("America/Halifax", ("Nova Scotia", "Nouvelle-Écosse")),
    "NT": ("America/Edmonton", ("Northwest Territories", "Territoires du Nord-Ouest")),
    "NU": ("America/Iqaluit", ("Nunavut",)),
    "ON": ("America/Toronto", ("Ontario",)),
    "PE": ("America/Halifax", ("Prince Edward Island", "Île-du-Prince-Édouard", "PEI")),
    "QC": ("America/Toronto", ("Quebec", "Québec", "PQ")),
    "SK": ("America/Regina", ("Saskatchewan",)),
    "YT": ("America/Whitehorse", ("Yukon",)),
}

UNITED_STATES: dict[str, tuple[str, tuple[str, ...]]] = {
    "AL": ("America/Chicago", ("Alabama",)),
    "AK": ("America/Anchorage", ("Alaska",)),
    "AZ": ("America/Phoenix", ("Arizona",)),
    "AR": ("America/Chicago", ("Arkansas",)),
    "CA": ("America/Los_Angeles", ("California",)),
    "CO": ("America/Denver", ("Colorado",)),
    "CT": ("America/New_York", ("Connecticut",)),
    "DE": ("America/New_York", ("Delaware",)),
    "DC": ("America/New_York", ("District of Columbia", "Washington DC", "Washington D.C.")),
    "FL": ("America/New_York", ("Florida", "Floride")),
    "GA": ("America/New_York", ("Georgia",)),
    "HI": ("Pacific/Honolulu", ("Hawaii", "Hawaiʻi")),
    "ID": ("America/Boise", ("Idaho",)),
    "IL": ("America/Chicago", ("Illinois",)),
    "IN": ("America/Indiana/Indianapolis", ("Indiana",)),
    "IA": ("America/Chicago", ("Iowa",)),
    "KS": ("America/Chicago", ("Kansas",)),
    "KY": ("America/New_York", ("Kentucky",)),
    "LA": ("America/Chicago", ("Louisiana", "Louisiane")),
    "ME": ("America/New_York", ("Maine",)),
    "MD": ("America/New_York", ("Maryland",)),
    "MA": ("America/New_York", ("Massachusetts",)),
    "MI": ("America/Detroit", ("Michigan",)),
    "MN": ("America/Chicago", ("Minnesota",)),
    "MS": ("America/Chicago", ("Mississippi",)),
    "MO": ("America/Chicago", ("Missouri",)),
    "MT": ("America/Denver", ("Montana",)),
    "NE": ("America/Chicago", ("Nebraska",)),
    "NV": ("America/Los_Angeles", ("Nevada",)),
    "NH": ("America/New_York", ("New Hampshire",)),
    "NJ": ("America/New_York", ("New Jersey",)),
    "NM": ("America/Denver", ("New Mexico",)),
    "NY": ("America/New_York", ("New York", "New York State", "État de New York")),
    "NC": ("America/New_York", ("North Carolina", "Caroline du Nord")),
    "ND": ("America/Chicago", ("North Dakota",)),
    "OH": ("America/New_York", ("Ohio",)),
    "OK": ("America/Chicago", ("Oklahoma",)),
    "OR": ("America/Los_Angeles", ("Oregon",)),
    "PA": ("America/New_York", ("Pennsylvania", "Pennsylvanie")),
    "RI": ("America/New_York", ("Rhode Island",)),
    "SC": ("America/New_York", ("South Carolina", "Caroline du Sud")),
    "SD": ("America/Chicago", ("South Dakota",)),
    "TN": ("America/Chicago", ("Tennessee",)),
    "TX": ("America/Chicago", ("Texas",)),
    "UT": ("America/Denver", ("Utah",)),
    "VT": ("America/New_York", ("Vermont",)),
    "VA": ("America/New_York", ("Virginia", "Virginie")),
    "WA": ("America/Los_Angeles", ("Washington", "Washington State")),
    "WV": ("America/New_York", ("West Virginia", "Virginie-Occidentale")),
    "WI": ("America/Chicago", ("Wisconsin",)),
    "WY": ("America/Denver", ("Wyoming",)),
    "PR": ("America/Puerto_Rico", ("Puerto Rico", "Porto Rico")),
    "GU": ("Pacific/Guam", ("Guam",)),
    "VI": ("America/St_Thomas", ("U.S. Virgin Islands", "US Virgin Islands", "Virgin Islands")),
    "AS": ("Pacific/Pago_Pago", ("American Samoa",)),
    "MP": ("Pacific/Saipan", ("Northern Mariana Islands",)),
}

SUBDIVISIONS: dict[str, dict[str, tuple[str, tuple[str, ...]]]] = {"CA": CANADA, "US": UNITED_STATES}

# Every country the tz database (zone.tab) gives exactly one zone -> that zone. A country with
# several (Mexico, Australia, Germany's Europe/Busingen beside Europe/Berlin) is left out: without a
# region emrcomm knows, its zone stays unknown. tests/test_directory.py checks this table against
# the installed zone.tab, so a tz release that splits or merges a country shows up there.
SINGLE_ZONE_COUNTRIES: dict[str, str] = {
    "AD": "Europe/Andorra", "AE": "Asia/Dubai", "AF": "Asia/Kabul", "AG": "America/Antigua",
    "AI": "America/Anguilla", "AL": "Europe/Tirane", "AM": "Asia/Yerevan", "AO": "Africa/Luanda",
    "AS": "Pacific/Pago_Pago", "AT": "Europe/Vienna", "AW": "America/Aruba", "AX": "Europe/Mariehamn",
    "AZ": "Asia/Baku", "BA": "Europe/Sarajevo", "BB": "America/Barbados", "BD": "Asia/Dhaka",
    "BE": "Europe/Brussels", "BF": "Africa/Ouagadougou", "BG": "Europe/Sofia", "BH": "Asia/Bahrain",
    "BI": "Africa/Bujumbura", "BJ": "Africa/Porto-Novo", "BL": "America/St_Barthelemy",
    "BM": "Atlantic/Bermuda", "BN": "Asia/Brunei", "BO": "America/La_Paz", "BQ": "America/Kralendijk",
    "BS": "America/Nassau", "BT": "Asia/Thimphu", "BW": "Africa/Gaborone", "BY": "Europe/Minsk",
    "BZ": "America/Belize", "CC": "Indian/Cocos", "CF": "Africa/Bangui", "CG": "Africa/Brazzaville",
    "CH": "Europe/Zurich", "CI": "Africa/Abidjan", "CK": "Pacific/Rarotonga", "CM": "Africa/Douala",
    "CO": "America/Bogota", "CR": "America/Costa_Rica", "CU": "America/Havana", "CV": "Atlantic/Cape_Verde",
    "CW": "America/Curacao", "CX": "Indian/Christmas", "CZ": "Europe/Prague", "DJ": "Africa/Djibouti",
    "DK": "Europe/Copenhagen", "DM": "America/Dominica", "DO": "America/Santo_Domingo",
    "DZ": "Africa/Algiers", "EE": "Europe/Tallinn", "EG": "Africa/Cairo", "EH": "Africa/El_Aaiun",
    "ER": "Africa/Asmara", "ET": "Africa/Addis_Ababa", "FI": "Europe/Helsinki", "FJ": "Pacific/Fiji",
    "FK": "Atlantic/Stanley", "FO": "Atlantic/Faroe", "FR": "Europe/Paris", "GA": "Africa/Libreville",
    "GB": "Europe/London", "GD": "America/Grenada", "GE": "Asia/Tbilisi", "GF": "America/Cayenne",
    "GG": "Europe/Guernsey", "GH": "Africa/Accra", "GI": "Europe/Gibraltar", "GM": "Africa/Banjul",
    "GN": "Africa/Conakry", "GP": "America/Guadeloupe", "GQ": "Africa/Malabo", "GR": "Europe/Athens",
    "GS": "Atlantic/South_Georgia", "GT": "America/Guatemala", "GU": "Pacific/Guam", "GW": "Africa/Bissau",
    "GY": "America/Guyana", "HK": "Asia/Hong_Kong", "HN": "America/Tegucigalpa", "HR": "Europe/Zagreb",
    "HT": "America/Port-au-Prince", "HU": "Europe/Budapest", "IE": "Europe/Dublin", "IL": "Asia/Jerusalem",
    "IM": "Europe/Isle_of_Man", "IN": "Asia/Kolkata", "IO": "Indian/Chagos", "IQ": "Asia/Baghdad",
    "IR": "Asia/Tehran", "IS": "Atlantic/Reykjavik", "IT": "Europe/Rome", "JE": "Europe/Jersey",
    "JM": "America/Jamaica", "JO": "Asia/Amman", "JP": "Asia/Tokyo", "KE": "Africa/Nairobi",
    "KG": "Asia/Bishkek", "KH": "Asia/Phnom_Penh", "KM": "Indian/Comoro", "KN": "America/St_Kitts",
    "KP": "Asia/Pyongyang", "KR": "Asia/Seoul", "KW": "Asia/Kuwait", "KY": "America/Cayman",
    "LA": "Asia/Vientiane", "LB": "Asia/Beirut", "LC": "America/St_Lucia", "LI": "Europe/Vaduz",
    "LK": "Asia/Colombo", "LR": "Africa/Monrovia", "LS": "Africa/Maseru", "LT": "Europe/Vilnius",
    "LU": "Europe/Luxembourg", "LV": "Europe/Riga", "LY": "Africa/Tripoli", "MA": "Africa/Casablanca",
    "MC": "Europe/Monaco", "MD": "Europe/Chisinau", "ME": "Europe/Podgorica", "MF": "America/Marigot",
    "MG": "Indian/Antananarivo", "MK": "Europe/Skopje", "ML": "Africa/Bamako", "MM": "Asia/Yangon",
    "MO": "Asia/Macau", "MP": "Pacific/Saipan", "MQ": "America/Martinique", "MR": "Africa/Nouakchott",
    "MS": "America/Montserrat", "MT": "Europe/Malta", "MU": "Indian/Mauritius", "MV": "Indian/Maldives",
    "MW": "Africa/Blantyre", "MZ": "Africa/Maputo", "NA": "Africa/Windhoek", "NC": "Pacific/Noumea",
    "NE": "Africa/Niamey", "NF": "Pacific/Norfolk", "NG": "Africa/Lagos", "NI": "America/Managua",
    "NL": "Europe/Amsterdam", "NO": "Europe/Oslo", "NP": "Asia/Kathmandu", "NR": "Pacific/Nauru",
    "NU": "Pacific/Niue", "OM": "Asia/Muscat", "PA": "America/Panama", "PE": "America/Lima",
    "PH": "Asia/Manila", "PK": "Asia/Karachi", "PL": "Europe/Warsaw", "PM": "America/Miquelon",
    "PN": "Pacific/Pitcairn", "PR": "America/Puerto_Rico", "PW": "Pacific/Palau", "PY": "America/Asuncion",
    "QA": "Asia/Qatar", "RE": "Indian/Reunion", "RO": "Europe/Bucharest", "RS": "Europe/Belgrade",
    "RW": "Africa/Kigali", "SA": "Asia/Riyadh", "SB": "Pacific/Guadalcanal", "SC": "Indian/Mahe",
    "SD": "Africa/Khartoum", "SE": "Europe/Stockholm", "SG": "Asia/Singapore", "SH": "Atlantic/St_Helena",
    "SI": "Europe/Ljubljana", "SJ": "Arctic/Longyearbyen", "SK": "Europe/Bratislava",
    "SL": "Africa/Freetown", "SM": "Europe/San_Marino", "SN": "Africa/Dakar", "SO": "Africa/Mogadishu",
    "SR": "America/Paramaribo", "SS": "Africa/Juba", "ST": "Africa/Sao_Tome", "SV": "America/El_Salvador",
    "SX": "America/Lower_Princes", "SY": "Asia/Damascus", "SZ": "Africa/Mbabane",
    "TC": "America/Grand_Turk", "TD": "Africa/Ndjamena", "TF": "Indian/Kerguelen", "TG": "Africa/Lome",
    "TH": "Asia/Bangkok", "TJ": "Asia/Dushanbe", "TK": "Pacific/Fakaofo", "TL": "Asia/Dili",
    "TM": "Asia/Ashgabat", "TN": "Africa/Tunis", "TO": "Pacific/Tongatapu", "TR": "Europe/Istanbul",
    "TT": "America/Port_of_Spain", "TV": "Pacific/Funafuti", "TW": "Asia/Taipei",
    "TZ": "Africa/Dar_es_Salaam", "UG": "Africa/Kampala", "UY": "America/Montevideo",
    "VA": "Europe/Vatican", "VC": "America/St_Vincent", "VE": "America/Caracas", "VG": "America/Tortola",
    "VI": "America/St_Thomas", "VN": "Asia/Ho_Chi_Minh", "VU": "Pacific/Efate", "WF": "Pacific/Wallis",
    "WS": "Pacific/Apia", "YE": "Asia/Aden", "YT": "Indian/Mayotte", "ZA": "Africa/Johannesburg",
    "ZM": "Africa/Lusaka", "ZW": "Africa/Harare",
}

# Country as written in Address.country (ISO 3166 alpha-2 or alpha-3, or a name) -> alpha-2.
# Alpha-2 codes that phonenumbers knows are accepted as they are.
_COUNTRY_NAMES: dict[str, str] = {
    "can": "CA", "canada": "CA",
    "usa": "US", "united states": "US", "united states of america": "US", "u s a": "US", "u s": "US",
    "etats unis": "US", "etats unis d amerique": "US",
    "fra": "FR", "france": "FR",
    "nld": "NL", "netherlands": "NL", "the netherlands": "NL", "nederland": "NL", "pays bas": "NL",
    "gbr": "GB", "united kingdom": "GB", "uk": "GB", "royaume uni": "GB",
    "aus": "AU", "australia": "AU", "australie": "AU",
    "bel": "BE", "belgium": "BE", "belgique": "BE",
    "che": "CH", "switzerland": "CH", "suisse": "CH",
    "deu": "DE", "germany": "DE", "allemagne": "DE",
    "mex": "MX", "mexico": "MX", "mexique": "MX",
    "hti": "HT", "haiti": "HT",
}

_SUBDIVISION_INDEX: dict[str, dict[str, str]] = {
    country: {
        fold(name): code
        for code, (_zone, names) in table.items()
        for name in (code, *names)
    }
    for country, table in SUBDIVISIONS.items()
}


def country_code(value: str | None) -> str | None:
    """ISO 3166-1 alpha-2 for an Address.country, or None when it is not recognised."""
    if not value or not value.strip():
        return None
    raw = value.strip()
    if len(raw) == 2 and raw.isalpha() and raw.upper() in phonenumbers.SUPPORTED_REGIONS:
        return raw.upper()
    return _COUNTRY_NAMES.get(fold(raw))


# A Canadian postal code's first letter is its province (Canada Post); the letters D, F, I, O, Q,
# U never appear, nor W and Z first, which keeps a London "E1W 1AA" from reading as New Brunswick.
_CANADIAN_POSTAL_CODE = re.compile(r"([ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z])[ -]?\d[ABCEGHJ-NPRSTV-Z]\d")
_PROVINCE_BY_FIRST_LETTER: dict[str, str] = {
    "A": "NL", "B": "NS", "C": "PE", "E": "NB", "G": "QC", "H": "QC", "J": "QC",
    "K": "ON", "L": "ON", "M": "ON", "N": "ON", "P": "ON", "R": "MB", "S": "SK", "T": "AB",
    "V": "BC", "Y": "YT",
}
# X is shared: these areas are Nunavut's, those the Northwest Territories'; any other is not guessed.
_TERRITORY_BY_AREA: dict[str, str] = {"X0A": "NU", "X0B": "NU", "X0C": "NU", "X0E": "NT", "X0G": "NT", "X1A": "NT"}


def province_from_postal_code(postal_code: str | None) -> str | None:
    """The province or territory (``QC``) a Canadian postal code (``H2X 1Y4``) is in, else None."""
    if not postal_code:
        return None
    m = _CANADIAN_POSTAL_CODE.fullmatch(postal_code.strip().upper())
    if m is None:
        return None
    area = m[1]
    return _TERRITORY_BY_AREA.get(area) if area[0] == "X" else _PROVINCE_BY_FIRST_LETTER[area[0]]


def subdivision(
    state: str | None, country: str | None, postal_code: str | None = None
) -> tuple[str | None, str | None]:
    """(country alpha-2, subdivision code) for an Address.state, Address.country and
    Address.postalCode.

    Without a country, a state that names a Canadian province or a US state (codes and names do
    not collide between the two) gives its country. Without a state, a Canadian postal code gives
    the province when the country is Canada or not given. Unknown parts are None.
    """
    cc = country_code(country)
    if not state or not state.strip():
        if cc in (None, "CA") and (province := province_from_postal_code(postal_code)) is not None:
            return "CA", province
        return cc, None
    key = fold(state)
    if cc is not None:
        code = _SUBDIVISION_INDEX.get(cc, {}).get(key)
        return cc, code
    for candidate, index in _SUBDIVISION_INDEX.items():
        if key in index:
            return candidate, index[key]
    return None, None


def jurisdiction_and_zone(
    state: str | None, country: str | None, postal_code: str | None = None
) -> tuple[str | None, str | None]:
    """ISO 3166-2 jurisdiction (``CA-QC``) and IANA zone for an address, each None if unknown.

    Outside Canada and the United States the jurisdiction is unknown, and the zone is known for a
    country that has one (``FR``: Europe/Paris).
    """
    cc, code = subdivision(state, country, postal_code)
    if cc is None or code is None:
        return None, SINGLE_ZONE_COUNTRIES.get(cc or "")
    zone, _names = SUBDIVISIONS[cc][code]
    return f"{cc}-{code}", zone
