"""Fixed reference data of the demo shop: countries, places, names, categories, carriers.

Fake but plausible. Nothing here is random: the generator draws from these tables with the
seed's random stream, so the same seed always gives the same shop.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Region:
    name: str
    metro: str  # the metropolitan city
    towns: tuple[str, ...]  # smaller, more remote places
    postcode: str  # first digits of the region's postcodes
    weight: float


@dataclass(frozen=True)
class Country:
    code: str
    weight: float
    languages: tuple[tuple[str, float], ...]
    phone: str  # international prefix and a mobile prefix
    street_first: bool  # "Hauptstraße 12" (True) or "12 rue de la Paix" (False)
    regions: tuple[Region, ...]
    carriers: tuple[tuple[str, str], ...]  # (carrier, tracking prefix)
    female: tuple[str, ...]
    male: tuple[str, ...]
    last: tuple[str, ...]
    streets: tuple[str, ...]


# fmt: off
COUNTRIES: tuple[Country, ...] = (
    Country(
        "DE",
        0.30,
        (("de", 1.0),),
        "+49 15",
        True,
        (
            Region("Berlin", "Berlin", ("Spandau", "Köpenick"), "10", 1.2),
            Region("Bayern", "München", ("Passau", "Rosenheim", "Bamberg"), "80", 1.5),
            Region("Hamburg", "Hamburg", ("Bergedorf", "Harburg"), "20", 0.8),
            Region("Nordrhein-Westfalen", "Köln", ("Bielefeld", "Siegen", "Paderborn"), "50", 2.0),
            Region("Sachsen", "Leipzig", ("Görlitz", "Plauen", "Zwickau"), "04", 0.8),
            Region("Baden-Württemberg", "Stuttgart", ("Ulm", "Konstanz"), "70", 1.3),
        ),
        (("DHL", "JJD"), ("DPD", "DP"), ("Hermes", "H"), ("GLS", "GL")),
        ("Anna", "Laura", "Julia", "Lena", "Sophie", "Marie", "Lea", "Hannah", "Katharina",
         "Sabine", "Petra", "Claudia", "Jana", "Emma", "Mia", "Franziska", "Nina", "Sarah"),
        ("Lukas", "Jonas", "Leon", "Felix", "Maximilian", "Paul", "Thomas", "Michael", "Stefan",
         "Andreas", "Tobias", "Florian", "Jan", "Niklas", "David", "Markus", "Daniel", "Tim"),
        ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
         "Schulz", "Hoffmann", "Koch", "Richter", "Klein", "Wolf", "Schröder", "Neumann",
         "Schwarz", "Zimmermann", "Braun", "Krüger", "Hofmann", "Hartmann", "Lange", "Werner"),
        ("Hauptstraße", "Schulstraße", "Gartenweg", "Bahnhofstraße", "Lindenallee",
         "Bergstraße", "Kirchgasse", "Am Markt", "Rosenweg", "Waldstraße", "Mühlenweg"),
    ),
    Country(
        "FR",
        0.20,
        (("fr", 1.0),),
        "+33 6",
        False,
        (
            Region("Île-de-France", "Paris", ("Meaux", "Étampes", "Provins"), "75", 2.0),
            Region("Auvergne-Rhône-Alpes", "Lyon", ("Aurillac", "Annecy", "Vichy"), "69", 1.3),
            Region("Provence-Alpes-Côte d'Azur", "Marseille", ("Gap", "Digne"), "13", 1.1),
            Region("Occitanie", "Toulouse", ("Rodez", "Albi", "Millau"), "31", 1.0),
            Region("Nouvelle-Aquitaine", "Bordeaux", ("Guéret", "Périgueux"), "33", 1.0),
        ),
        (("Colissimo", "6A"), ("Chronopost", "XY"), ("DPD", "DP")),
        ("Camille", "Léa", "Manon", "Chloé", "Emma", "Inès", "Julie", "Sarah", "Claire",
         "Nathalie", "Isabelle", "Sophie", "Marion", "Pauline", "Lucie", "Anaïs"),
        ("Lucas", "Hugo", "Louis", "Gabriel", "Arthur", "Jules", "Nicolas", "Julien", "Pierre",
         "Thomas", "Antoine", "Mathieu", "Guillaume", "Romain", "Maxime", "Olivier"),
        ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand",
         "Leroy", "Moreau", "Simon", "Laurent", "Lefèvre", "Michel", "Garcia", "David",
         "Bertrand", "Roux", "Vincent", "Fournier", "Morel", "Girard"),
        ("rue de la Paix", "avenue Victor Hugo", "rue des Lilas", "boulevard Voltaire",
         "rue du Moulin", "place de l'Église", "chemin des Vignes", "rue Pasteur"),
    ),
    Country(
        "ES",
        0.12,
        (("es", 1.0),),
        "+34 6",
        True,
        (
            Region("Madrid", "Madrid", ("Aranjuez", "Alcalá de Henares"), "28", 1.5),
            Region("Cataluña", "Barcelona", ("Girona", "Lleida", "Vic"), "08", 1.5),
            Region("Andalucía", "Sevilla", ("Jaén", "Ronda", "Úbeda"), "41", 1.3),
            Region("Comunidad Valenciana", "Valencia", ("Alcoy", "Gandía"), "46", 1.0),
        ),
        (("Correos", "PQ"), ("SEUR", "SE"), ("MRW", "MR")),
        ("Lucía", "María", "Paula", "Laura", "Carmen", "Ana", "Marta", "Elena", "Sara",
         "Cristina", "Isabel", "Raquel", "Sofía", "Alba"),
        ("Hugo", "Pablo", "Daniel", "Alejandro", "Javier", "David", "Carlos", "Manuel",
         "Sergio", "Jorge", "Miguel", "Antonio", "Álvaro", "Diego"),
        ("García", "Fernández", "González", "Rodríguez", "López", "Martínez", "Sánchez",
         "Pérez", "Gómez", "Martín", "Jiménez", "Ruiz", "Hernández", "Díaz", "Moreno",
         "Álvarez", "Romero", "Navarro"),
        ("Calle Mayor", "Avenida de la Constitución", "Calle del Sol", "Calle Real",
         "Paseo de Gracia", "Calle de Alcalá", "Plaza de España", "Calle Nueva"),
    ),
    Country(
        "IT",
        0.12,
        (("it", 1.0),),
        "+39 3",
        True,
        (
            Region("Lombardia", "Milano", ("Sondrio", "Lodi", "Crema"), "20", 1.6),
            Region("Lazio", "Roma", ("Rieti", "Viterbo"), "00", 1.5),
            Region("Campania", "Napoli", ("Avellino", "Benevento"), "80", 1.1),
            Region("Piemonte", "Torino", ("Cuneo", "Biella", "Asti"), "10", 1.0),
        ),
        (("Poste Italiane", "RR"), ("BRT", "BR"), ("SDA", "SD")),
        ("Giulia", "Sofia", "Aurora", "Alice", "Francesca", "Chiara", "Sara", "Martina",
         "Elena", "Valentina", "Federica", "Silvia", "Laura", "Anna"),
        ("Leonardo", "Francesco", "Alessandro", "Lorenzo", "Matteo", "Andrea", "Marco",
         "Luca", "Giuseppe", "Giovanni", "Davide", "Stefano", "Paolo", "Simone"),
        ("Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci",
         "Marino", "Greco", "Bruno", "Gallo", "Conti", "De Luca", "Costa", "Giordano",
         "Mancini", "Rizzo"),
        ("Via Roma", "Via Garibaldi", "Corso Italia", "Via Dante", "Via Verdi",
         "Piazza del Duomo", "Via Mazzini", "Viale dei Pini"),
    ),
    Country(
        "NL",
        0.09,
        (("nl", 1.0),),
        "+31 6",
        True,
        (
            Region("Noord-Holland", "Amsterdam", ("Den Helder", "Hoorn"), "10", 1.4),
            Region("Zuid-Holland", "Rotterdam", ("Gorinchem", "Leiden"), "30", 1.4),
            Region("Utrecht", "Utrecht", ("Amersfoort", "Veenendaal"), "35", 0.8),
            Region("Groningen", "Groningen", ("Delfzijl", "Winschoten"), "97", 0.5),
        ),
        (("PostNL", "3S"), ("DHL", "JV"), ("DPD", "DP")),
        ("Emma", "Julia", "Sophie", "Tess", "Anna", "Lotte", "Sanne", "Fleur", "Eva",
         "Lisa", "Iris", "Femke"),
        ("Daan", "Sem", "Lucas", "Levi", "Bram", "Thijs", "Jesse", "Ruben", "Sander",
         "Pieter", "Joost", "Niels"),
        ("de Jong", "Jansen", "de Vries", "van den Berg", "van Dijk", "Bakker", "Janssen",
         "Visser", "Smit", "Meijer", "de Boer", "Mulder", "de Groot", "Bos", "Vos"),
        ("Dorpsstraat", "Kerkstraat", "Molenweg", "Stationsweg", "Schoolstraat", "Prinsengracht",
         "Julianalaan", "Beatrixstraat"),
    ),
    Country(
        "AT",
        0.06,
        (("de", 1.0),),
        "+43 66",
        True,
        (
            Region("Wien", "Wien", ("Floridsdorf", "Liesing"), "11", 1.5),
            Region("Steiermark", "Graz", ("Leoben", "Liezen"), "80", 0.8),
            Region("Tirol", "Innsbruck", ("Kitzbühel", "Landeck", "Lienz"), "60", 0.7),
            Region("Oberösterreich", "Linz", ("Steyr", "Braunau"), "40", 0.8),
        ),
        (("Post AT", "10"), ("DPD", "DP"), ("GLS", "GL")),
        ("Anna", "Lena", "Sarah", "Hannah", "Katharina", "Julia", "Theresa", "Magdalena",
         "Sophie", "Elena", "Johanna", "Valentina"),
        ("Lukas", "Tobias", "David", "Jakob", "Maximilian", "Florian", "Elias", "Fabian",
         "Stefan", "Christoph", "Matthias", "Dominik"),
        ("Gruber", "Huber", "Bauer", "Wagner", "Müller", "Pichler", "Steiner", "Moser",
         "Mayer", "Hofer", "Leitner", "Berger", "Fuchs", "Eder", "Fischer"),
        ("Hauptplatz", "Kirchengasse", "Lindengasse", "Bahnhofstraße", "Dorfstraße",
         "Schlossweg", "Almweg", "Wiener Straße"),
    ),
    Country(
        "BE",
        0.06,
        (("nl", 0.6), ("fr", 0.4)),
        "+32 47",
        True,
        (
            Region("Brussel", "Brussel", ("Anderlecht", "Uccle"), "10", 1.0),
            Region("Antwerpen", "Antwerpen", ("Mol", "Turnhout", "Geel"), "20", 1.1),
            Region("Oost-Vlaanderen", "Gent", ("Aalst", "Ronse"), "90", 0.9),
            Region("Liège", "Liège", ("Spa", "Verviers", "Huy"), "40", 0.8),
        ),
        (("bpost", "32"), ("PostNL", "3S"), ("DPD", "DP")),
        ("Emma", "Louise", "Marie", "Elise", "Julie", "Lotte", "Sarah", "Charlotte",
         "Camille", "Laura", "Nina", "Amélie"),
        ("Noah", "Louis", "Arthur", "Lucas", "Jules", "Liam", "Thomas", "Wout", "Maxime",
         "Pieter", "Simon", "Bart"),
        ("Peeters", "Janssens", "Maes", "Jacobs", "Mertens", "Willems", "Claes", "Goossens",
         "Wouters", "Dubois", "Lambert", "Dupont", "De Smet", "Hermans"),
        ("Kerkstraat", "Stationsstraat", "Rue de la Station", "Dorpstraat", "Nieuwstraat",
         "Rue Royale", "Molenstraat", "Avenue Louise"),
    ),
    Country(
        "IE",
        0.05,
        (("en", 1.0),),
        "+353 8",
        False,
        (
            Region("Leinster", "Dublin", ("Athlone", "Carlow", "Wexford"), "D0", 1.6),
            Region("Munster", "Cork", ("Tralee", "Ennis", "Clonmel"), "T1", 1.0),
            Region("Connacht", "Galway", ("Castlebar", "Sligo"), "H9", 0.6),
        ),
        (("An Post", "CE"), ("DPD", "DP"), ("Fastway", "FW")),
        ("Emily", "Grace", "Sophie", "Aoife", "Ciara", "Niamh", "Sarah", "Emma", "Róisín",
         "Siobhan", "Orla", "Kate"),
        ("Jack", "James", "Conor", "Seán", "Daniel", "Michael", "Patrick", "Cian", "Darragh",
         "Liam", "Eoin", "Ciarán"),
        ("Murphy", "Kelly", "O'Sullivan", "Walsh", "Smith", "O'Brien", "Byrne", "Ryan",
         "O'Connor", "O'Neill", "Doyle", "McCarthy", "Gallagher", "Kennedy"),
        ("Main Street", "Church Road", "Green Lane", "Strand Road", "Castle Street",
         "Mill Road", "Station Road", "Abbey Street"),
    ),
)


@dataclass(frozen=True)
class Leaf:
    top: str
    name: str
    slug: str
    price: float  # median price in EUR
    spread: float  # sigma of the lognormal price within the band
    popularity: float
    return_rate: float  # share of delivered lines sent back, before seller and lateness
    female: float  # -1 (bought mostly by men) .. +1 (mostly by women)
    age: float  # typical buyer age
    multiples: float  # chance of buying more than one piece
    brands: tuple[str, ...]
    nouns: tuple[str, ...]
    searches: tuple[str, ...]
    related: tuple[str, ...]  # slugs of complementary leaves (cross-sell, branching)


LEAVES: tuple[Leaf, ...] = (
    Leaf("Electronics", "Smartphones", "smartphones", 300, 0.45, 0.55, 0.05, -0.1, 33, 0.0,
         ("Novaphone", "Kestrel", "Lumio"), ("Phone", "Smartphone", "Mini", "Pro"),
         ("smartphone", "5g phone", "android phone"), ("phone-accessories", "headphones")),
    Leaf("Electronics", "Laptops", "laptops", 700, 0.35, 0.25, 0.05, -0.3, 38, 0.0,
         ("Arcbook", "Veloce", "Tessera"), ("Laptop", "Notebook", "Ultrabook"),
         ("laptop", "notebook 16gb", "ultrabook"), ("phone-accessories", "games")),
    Leaf("Electronics", "Headphones", "headphones", 85, 0.6, 0.9, 0.06, -0.1, 30, 0.02,
         ("Sonara", "Beatline", "Kestrel"), ("Earbuds", "Headphones", "Headset"),
         ("wireless earbuds", "noise cancelling", "headphones"), ("smartphones", "running")),
    Leaf("Electronics", "Cameras", "cameras", 520, 0.55, 0.18, 0.05, -0.4, 42, 0.0,
         ("Optika", "Lumio", "Fennec"), ("Camera", "Mirrorless", "Action Cam"),
         ("camera", "mirrorless camera", "action cam"), ("phone-accessories", "camping")),
    Leaf("Electronics", "Phone Accessories", "phone-accessories", 18, 0.55, 1.4, 0.04, 0.0,
         31, 0.15, ("Kestrel", "Gripster", "Voltix"), ("Case", "Charger", "Cable", "Power Bank"),
         ("phone case", "usb-c cable", "charger"), ("smartphones", "headphones")),
    Leaf("Fashion", "Women's Clothing", "womens-clothing", 42, 0.6, 1.5, 0.24, 0.9, 34,
         0.12, ("Maison Lila", "Northwind", "Velours"), ("Dress", "Blouse", "Jeans", "Cardigan"),
         ("summer dress", "jeans women", "blouse"), ("shoes", "bags")),
    Leaf("Fashion", "Men's Clothing", "mens-clothing", 45, 0.55, 1.0, 0.2, -0.9, 36, 0.1,
         ("Northwind", "Fjell", "Harbour & Co"), ("Shirt", "Chinos", "Jacket", "Sweater"),
         ("shirt men", "chinos", "winter jacket"), ("shoes",)),
    Leaf("Fashion", "Shoes", "shoes", 75, 0.45, 1.1, 0.22, 0.3, 34, 0.03,
         ("Stride", "Fjell", "Velours"), ("Sneaker", "Boot", "Loafer", "Sandal"),
         ("sneakers", "boots", "sandals"), ("womens-clothing", "mens-clothing", "running")),
    Leaf("Fashion", "Bags", "bags", 48, 0.6, 0.6, 0.12, 0.7, 35, 0.02,
         ("Maison Lila", "Carryall", "Velours"), ("Tote", "Backpack", "Clutch"),
         ("backpack", "handbag", "tote bag"), ("womens-clothing",)),
    Leaf("Home & Kitchen", "Kitchen", "kitchen", 32, 0.8, 1.2, 0.05, 0.3, 44, 0.1,
         ("Casa Nova", "Ferro", "Kitchenly"), ("Pan", "Knife Set", "Kettle", "Blender"),
         ("frying pan", "kettle", "knife set"), ("decor", "furniture")),
    Leaf("Home & Kitchen", "Furniture", "furniture", 190, 0.7, 0.3, 0.07, 0.2, 45, 0.02,
         ("Oakwood", "Nordhem", "Casa Nova"), ("Chair", "Shelf", "Desk", "Sofa"),
         ("office chair", "bookshelf", "desk"), ("decor", "bedding")),
    Leaf("Home & Kitchen", "Bedding", "bedding", 48, 0.55, 0.6, 0.06, 0.5, 46, 0.15,
         ("Dreamwell", "Nordhem"), ("Duvet", "Pillow", "Sheet Set"),
         ("duvet", "pillow", "bed sheets"), ("decor", "furniture")),
    Leaf("Home & Kitchen", "Decor", "decor", 24, 0.7, 0.8, 0.06, 0.6, 41, 0.15,
         ("Lumen", "Casa Nova", "Oakwood"), ("Vase", "Lamp", "Candle", "Frame"),
         ("lamp", "scented candle", "picture frame"), ("kitchen", "bedding")),
    Leaf("Sports & Outdoors", "Running", "running", 62, 0.5, 0.8, 0.1, 0.0, 35, 0.05,
         ("Stride", "Aerorun", "Peakline"), ("Running Shoe", "Running Shirt", "Tights"),
         ("running shoes", "running jacket", "tights"), ("headphones", "shoes", "cycling")),
    Leaf("Sports & Outdoors", "Cycling", "cycling", 110, 0.9, 0.4, 0.06, -0.5, 39, 0.02,
         ("Velocita", "Peakline"), ("Helmet", "Bike Light", "Saddle", "Jersey"),
         ("bike helmet", "bike light", "cycling jersey"), ("running", "camping")),
    Leaf("Sports & Outdoors", "Camping", "camping", 70, 0.8, 0.4, 0.05, -0.3, 40, 0.05,
         ("Fjell", "Peakline", "Trailhead"), ("Tent", "Sleeping Bag", "Lantern", "Stove"),
         ("tent", "sleeping bag", "camping stove"), ("cycling", "cameras")),
    Leaf("Books & Media", "Books", "books", 16, 0.4, 1.3, 0.02, 0.3, 47, 0.12,
         ("Penfold Press", "Lantern Books", "Quire"), ("Novel", "Cookbook", "Guide", "Thriller"),
         ("bestseller", "cookbook", "thriller"), ("games", "kitchen")),
    Leaf("Books & Media", "Games", "games", 45, 0.4, 0.8, 0.03, -0.6, 27, 0.05,
         ("Pixelforge", "Gamecraft"), ("Game", "Controller", "Board Game"),
         ("video game", "controller", "board game"), ("laptops", "books")),
    Leaf("Beauty & Health", "Skincare", "skincare", 22, 0.6, 1.2, 0.03, 0.8, 36, 0.2,
         ("Belle Peau", "Aqualis", "Verdance"), ("Serum", "Cream", "Cleanser", "Sunscreen"),
         ("face cream", "serum", "sunscreen"), ("fragrance",)),
    Leaf("Beauty & Health", "Fragrance", "fragrance", 58, 0.5, 0.6, 0.03, 0.5, 38, 0.03,
         ("Belle Peau", "Maison Lila", "Oriane"), ("Eau de Parfum", "Eau de Toilette"),
         ("perfume", "eau de parfum", "gift set"), ("skincare",)),
)

# fmt: on

TOP_LEVEL: tuple[str, ...] = tuple(dict.fromkeys(leaf.top for leaf in LEAVES))

# fmt: off
SELLER_WORDS = (
    ("Nordic", "Sunny", "Urban", "Alpine", "Blue", "Golden", "Green", "Coastal", "Bright",
     "Oak", "Silver", "Metro", "Happy", "Prime", "Swift"),
    ("Gear", "Home", "Style", "Outfitters", "Trading", "Goods", "Supply", "Market", "Living",
     "Tech", "Wares", "Depot", "Bazaar", "Works"),
)
SELLER_SUFFIX = {"DE": "GmbH", "FR": "SARL", "ES": "S.L.", "IT": "S.r.l.", "NL": "B.V.",
                 "AT": "GmbH", "BE": "BV", "IE": "Ltd", "CN": "Co., Ltd", "PL": "Sp. z o.o."}
SELLER_COUNTRIES = ("DE", "DE", "DE", "FR", "FR", "ES", "IT", "NL", "AT", "BE", "IE", "PL", "CN")

ACQUISITION = ("search", "social", "referral", "direct", "affiliate", "newsletter")
ACQUISITION_WEIGHTS = (0.34, 0.2, 0.12, 0.2, 0.08, 0.06)

CAMPAIGNS = (
    ("newsletter", "email", "weekly_picks"),
    ("google", "cpc", "brand_search"),
    ("facebook", "social", "retargeting"),
    ("instagram", "social", "new_arrivals"),
    ("partner", "affiliate", "deals_portal"),
)

RETURN_REASONS_APPAREL = (("wrong_size", 0.5), ("not_as_expected", 0.25), ("changed_mind", 0.15),
                          ("damaged", 0.05), ("arrived_late", 0.05))
RETURN_REASONS_OTHER = (("defective", 0.3), ("not_as_described", 0.2), ("changed_mind", 0.3),
                        ("damaged", 0.12), ("arrived_late", 0.08))

REVIEW_TEXTS: dict[int, tuple[tuple[str, str], ...]] = {
    1: (("Very disappointed", "Broke after a few days and the seller did not answer."),
        ("Do not buy", "Nothing like the pictures. Sent it back."),
        ("Terrible", "Arrived late and damaged.")),
    2: (("Not great", "Quality is below what I expected for the price."),
        ("Meh", "It works, but it feels cheap."),
        ("Could be better", "Delivery took far too long.")),
    3: (("Okay", "Does the job, nothing special."),
        ("Average", "Fine for the price."),
        ("It's alright", "Some flaws, but usable.")),
    4: (("Good value", "Works well, would buy again."),
        ("Happy with it", "Good quality, quick delivery."),
        ("Nice", "Does what it says.")),
    5: (("Excellent!", "Exactly what I wanted. Fast delivery too."),
        ("Love it", "Great quality, highly recommended."),
        ("Perfect", "Five stars, no complaints at all.")),
}
# fmt: on
