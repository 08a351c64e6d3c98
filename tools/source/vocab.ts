/**
 * Word lists for synthetic totesys rows, in the style of the real database (which was filled
 * by faker): surnames as street and company names, UK counties as districts, faker country
 * names (apostrophes, parentheses and ampersands included), system paths as design folders.
 * A few entries carry non-ASCII letters on purpose.
 */

export const FIRST_NAMES = [
  "Jeremie", "Deron", "Jeanette", "Ana", "Magdalena", "Korey", "Raphael", "Oswaldo", "Brody", "Jazmyn",
  "Meda", "Imani", "Stan", "Rigoberto", "Tom", "Jett", "Irving", "Tomasa", "Pierre", "Flavio",
  "Micheal", "Lucy", "Melba", "Jean", "Jane", "Myra", "Taylor", "Alfredo", "Homer", "Ivan",
  "Florence", "Eva", "Wilma", "Christy", "Emily", "Veronica", "Sheryl", "Simon", "Ed", "Dewey",
  "Glen", "Laurie", "Marcus", "Rosa", "Sherry", "Elizabeth", "Susan", "Andrea", "Roderick", "Jake",
  "Alberta", "Tracy", "Doris", "Gregg", "Laura", "Olivia", "Pearl", "Warren", "Sophie", "Janie",
  "Patience", "Tyra", "Arne", "Bobbie", "Wyatt", "Myrl", "Shad", "Deshaun", "Kaylah", "Ernestine",
  "Alexie", "Sincere", "Georgette", "Providenci", "Horacio", "Macey", "Nora", "Noemy", "Izabella", "Axel"
] as const

export const UNICODE_FIRST_NAMES = ["Zoë", "José", "Siân", "Björn", "Renée", "Łukasz", "Øystein", "Chloé", "Åsa", "François"] as const

export const LAST_NAMES = [
  "Herzog", "Rogahn", "Upton", "Kailey", "Durgan", "Bernier", "Torphy", "Grady", "Koch", "Leuschke",
  "Cole", "Klein", "Goodwin", "Breitenberg", "Heathcote", "Ullrich", "Pacocha", "Fahey", "Leannon", "Predovic",
  "Morar", "Armstrong", "Kohler", "Frami", "Yundt", "Macejkovic", "Mraz", "Padberg", "Lueilwitz", "Johnson",
  "Grant", "Lakin", "Price", "Bosco", "Corkery", "Nienow", "Keeling", "Emmerich", "Hand", "Krajcik",
  "Kuhlman", "Hintz", "Hayes", "Will", "Rohan", "Reynolds", "Hartmann", "Franecki", "Ratke", "Kihn",
  "Smith", "Ondricka", "Conroy", "Turcotte", "Yost", "Watsica", "Mann", "Franey", "Beier", "Erdman",
  "Glover", "Zieme", "Kreiger", "Rippin", "Bergstrom", "Kuhn", "Cremin", "Walker", "Lehner", "VonRueden",
  "Gutkowski", "Parisian", "Moore", "Sauer", "Kulas", "Toy", "Runolfsdottir", "Sanford", "Hane", "Wiza",
  "Kovacek", "Haag", "Cassin", "Mitchell", "Balistreri", "Casper", "Witting", "Orn", "Fay", "Langworth",
  "Schoen", "Halvorson", "Kuhic", "Hermiston", "Powlowski", "Senger", "Kassulke", "Waters", "Welch", "Quigley"
] as const

export const UNICODE_LAST_NAMES = ["Müller", "Brontë", "Søndergaard", "Núñez", "Dvořák", "Łukasiewicz", "Ó Súilleabháin", "Schäfer"] as const

export const APOSTROPHE_LAST_NAMES = ["O'Keefe", "O'Connell", "O'Hara", "D'Amore", "O'Reilly", "O'Kon"] as const

export const NAME_PREFIXES = ["Mr.", "Mrs.", "Ms.", "Miss", "Dr."] as const
export const NAME_SUFFIXES = ["Jr.", "Sr.", "II", "III", "IV", "V", "PhD", "MD", "DDS", "DVM"] as const

export const STREET_SUFFIXES = [
  "Via", "Cliffs", "Fort", "Skyway", "Track", "Island", "Ways", "Common", "Garden", "Flat",
  "Mission", "Expressway", "Dale", "Turnpike", "Trafficway", "Extension", "Drives", "Cliff", "Corner", "Landing",
  "Ridge", "Streets", "Spring", "Freeway", "Inlet", "Branch", "View", "Lock", "Heights", "Circles",
  "Radial", "Glens", "Bridge", "Pines", "Wall", "Mews", "Square", "Lane", "Road", "Avenue"
] as const

export const CITY_PREFIXES = ["New", "Lake", "East", "West", "North", "South", "Port", "Fort"] as const
export const CITY_SUFFIXES = [
  "burgh", "ton", "side", "view", "furt", "port", "chester", "cester", "mouth", "fort",
  "shire", "ville", "stad", "borough", "land", "haven", "berg", "bury", "town", "field"
] as const
export const REAL_CITIES = [
  "Aliso Viejo", "Lake Charles", "Suffolk", "Corpus Christi", "Hackensack", "Pueblo", "Fresno", "Sayreville",
  "Napa", "Oakland Park", "Utica", "Kendall", "Round Rock", "Bellevue", "Tustin", "Redlands"
] as const
export const UNICODE_CITIES = ["São Tomé", "Zürich", "Kraków", "Malmö", "Besançon", "Ålesund"] as const

export const DISTRICTS = ["Avon", "Bedfordshire", "Buckinghamshire", "Berkshire", "Borders", "Cambridgeshire", "Cheshire", "Cornwall"] as const

export const COUNTRIES = [
  "Turkey", "San Marino", "Samoa", "Republic of Korea", "Bosnia and Herzegovina", "Zimbabwe", "Faroe Islands",
  "United Kingdom", "Australia", "Democratic People's Republic of Korea", "Japan", "Tajikistan",
  "Bouvet Island (Bouvetoya)", "Iraq", "Heard Island and McDonald Islands", "Iceland", "Indonesia", "Kiribati",
  "Sierra Leone", "Bolivia", "Svalbard & Jan Mayen Islands", "Papua New Guinea", "Antigua and Barbuda", "Sudan",
  "American Samoa", "Guam", "Austria", "Congo", "Falkland Islands (Malvinas)", "Peru", "Norway", "Chile",
  "Lao People's Democratic Republic", "Saint Kitts and Nevis", "Micronesia", "Portugal", "Mongolia", "Ghana",
  "Côte d'Ivoire", "Curaçao", "Réunion", "Åland Islands"
] as const

export const COMPANY_SUFFIXES = ["Inc", "LLC", "Group", "and Sons"] as const

export const DESIGN_MATERIALS = [
  "Steel", "Concrete", "Soft", "Granite", "Frozen", "Bronze", "Plastic", "Cotton", "Metal", "Fresh", "Rubber", "Wooden"
] as const

export const FILE_LOCATIONS = [
  "/usr/libexec", "/net", "/usr", "/etc", "/usr/share", "/selinux", "/etc/periodic", "/usr/ports", "/opt/lib",
  "/home/user/dir", "/usr/local/src", "/usr/libdata", "/lost+found", "/etc/ppp", "/etc/namedb", "/bin",
  "/boot/defaults", "/opt/sbin", "/var/tmp", "/var/log", "/etc/mail", "/System", "/private", "/Users", "/sys",
  "/usr/X11R6", "/usr/lib", "/opt", "/lib", "/Library", "/root", "/dev", "/Applications", "/sbin", "/usr/src",
  "/usr/obj", "/var", "/etc/defaults", "/boot", "/var/yp", "/home", "/opt/include", "/usr/include", "/usr/bin",
  "/private/tmp", "/opt/bin", "/mnt", "/srv", "/usr/sbin", "/proc", "/Network", "/home/user", "/var/spool",
  "/opt/share", "/var/mail", "/usr/local/bin", "/rescue", "/private/var", "/media", "/tmp"
] as const

/** The real company's departments and sites, with the misspelt `Leds` of department 4. */
export const DEPARTMENTS = [
  { name: "Sales", location: "Manchester" },
  { name: "Purchasing", location: "Manchester" },
  { name: "Production", location: "Leeds" },
  { name: "Dispatch", location: "Leds" },
  { name: "Finance", location: "Manchester" },
  { name: "Facilities", location: "Manchester" },
  { name: "Communications", location: "Leeds" },
  { name: "HR", location: "Leeds" }
] as const

export const DEPARTMENT_LOCATIONS = ["Manchester", "Leeds", "Leds", "Liverpool", "Sheffield"] as const

export const CURRENCY_CODES = ["GBP", "USD", "EUR"] as const

export const PAYMENT_TYPE_NAMES = ["SALES_RECEIPT", "SALES_REFUND", "PURCHASE_PAYMENT", "PURCHASE_REFUND"] as const

export const EMAIL_DOMAIN = "terrifictotes.com"

/** Item codes are 7 characters of upper-case letters and digits ('ZDOI5EA'). */
export const ITEM_CODE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
export const FILE_TAG_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
