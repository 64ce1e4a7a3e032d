//! Word lists and sentence templates for the synthetic data, in Danish.

use feltkontor_wire::{NoteKind, Profession, RelationToChild};
use rand::rngs::StdRng;
use rand::Rng;

/// The Aarhus local districts (lokaldistrikter) from the glossary.
pub const DISTRICTS: &[&str] = &[
    "Søndervang",
    "Ellehøj",
    "Åby",
    "Bavnehøj",
    "Bakkegård",
    "Tilst",
    "Sødal",
    "Gammelgaard",
    "Engdal",
    "Skjoldhøj",
    "Sabro-Korsvej",
];

pub const GIRLS: &[&str] = &[
    "Emma", "Ida", "Clara", "Freja", "Alma", "Ella", "Sofia", "Agnes", "Karla", "Laura", "Olivia",
    "Josefine", "Maja", "Liva", "Asta", "Nora", "Aya", "Esther", "Signe", "Mathilde", "Sara",
    "Amira", "Lærke", "Vigga",
];
pub const BOYS: &[&str] = &[
    "William", "Noah", "Oscar", "Lucas", "Carl", "Victor", "Malthe", "Alfred", "Emil", "Oliver",
    "Aksel", "Valdemar", "Magnus", "Frederik", "Elias", "Storm", "Anton", "Ali", "Mikkel", "Søren",
    "Bjørn", "Mads", "Yusuf", "Asger",
];
const WOMEN: &[&str] = &[
    "Anne",
    "Mette",
    "Hanne",
    "Susanne",
    "Camilla",
    "Louise",
    "Maria",
    "Pernille",
    "Tina",
    "Line",
    "Charlotte",
    "Helle",
    "Birgitte",
    "Fatima",
    "Rikke",
    "Malene",
    "Janne",
    "Sanne",
    "Gitte",
    "Lene",
    "Ditte",
    "Karin",
];
const MEN: &[&str] = &[
    "Peter", "Jens", "Lars", "Henrik", "Thomas", "Søren", "Martin", "Jesper", "Niels", "Anders",
    "Rasmus", "Kim", "Michael", "Morten", "Jakob", "Ahmed", "Kasper", "Torben", "Jørgen", "Ole",
    "Brian", "Steffen",
];
pub const SURNAMES: &[&str] = &[
    "Nielsen",
    "Jensen",
    "Hansen",
    "Pedersen",
    "Andersen",
    "Christensen",
    "Larsen",
    "Sørensen",
    "Rasmussen",
    "Jørgensen",
    "Petersen",
    "Madsen",
    "Kristensen",
    "Olsen",
    "Thomsen",
    "Christiansen",
    "Poulsen",
    "Johansen",
    "Møller",
    "Mortensen",
    "Knudsen",
    "Jakobsen",
    "Mikkelsen",
    "Frederiksen",
    "Holm",
    "Laursen",
    "Schmidt",
    "Eriksen",
    "Kjær",
    "Østergaard",
    "Ærenlund",
    "Bach",
    "Dahl",
    "Lund",
    "Højgaard",
    "Yilmaz",
    "Hussein",
    "Åberg",
];
pub const SCHOOLS: &[&str] = &[
    "Ellehøj Skole",
    "Skjoldhøjskolen",
    "Sødalskolen",
    "Tilst Skole",
    "Sabro-Korsvejskolen",
    "Engdalskolen",
    "Gammelgaardskolen",
    "Bakkegårdskolen",
    "Søndervangskolen",
    "Åby Skole",
];
pub const DAYCARES: &[&str] = &[
    "Dagtilbud Bavnehøj",
    "Børnehuset Solsikken",
    "Vuggestuen Myretuen",
    "Børnehaven Troldehøj",
    "Dagtilbud Tilst",
    "Børnehuset Regnbuen",
];
pub const LANGUAGES: &[&str] = &[
    "arabisk", "somali", "tyrkisk", "ukrainsk", "farsi", "tigrinya", "polsk",
];
const STREETS: &[&str] = &[
    "Søndervangs Allé",
    "Ellehøjvej",
    "Skjoldhøjvej",
    "Bavnehøj Allé",
    "Gammelgaardsvej",
    "Engdalsvej",
    "Sødalsparken",
    "Tilstvej",
    "Korsvejen",
    "Åbyhøjgade",
];
const POSTCODES: &[&str] = &[
    "8210 Aarhus V",
    "8220 Brabrand",
    "8230 Åbyhøj",
    "8381 Tilst",
    "8471 Sabro",
    "8000 Aarhus C",
];

pub const FAMILY_AGREEMENTS: &[&str] = &[
    "Mor følger Søren i skole tre dage om ugen",
    "Far ringer til klasselæreren hver fredag",
    "Familien laver en fast sengetid og skriver den på køleskabet",
    "Forældrene deltager i forældrekursus i Familiecentret",
    "Mor kontakter egen læge om søvnproblemer",
    "Familien tager med til netværksmøde med bedsteforældrene",
];
pub const STAFF_AGREEMENTS: &[&str] = &[
    "Tovholder indkalder til netværksmøde inden næste måned",
    "PPR-psykologen observerer i klassen og giver tilbagemelding",
    "Sundhedsplejersken laver hjemmebesøg om kost og søvn",
    "Rådgiver undersøger mulighed for aflastning",
    "Pædagogen laver en plan for overgangen til børnehaveklasse",
    "Skolen sender fraværsoversigt til tovholder hver 14. dag",
];

const OPENINGS: &[(NoteKind, &[&str])] = &[
    (
        NoteKind::HomeVisit,
        &[
            "Hjemmebesøg hos familien.",
            "Besøg i hjemmet efter aftale med mor.",
            "Uanmeldt hjemmebesøg efter bekymring fra skolen.",
        ],
    ),
    (
        NoteKind::Meeting,
        &[
            "Møde med forældrene på rådhuset.",
            "Opfølgende møde med familien.",
            "Samtale med mor og far sammen.",
        ],
    ),
    (
        NoteKind::PhoneCall,
        &[
            "Telefonsamtale med mor.",
            "Far ringede til tovholder.",
            "Opringning fra klasselæreren.",
        ],
    ),
    (
        NoteKind::SchoolDaycareVisit,
        &[
            "Besøg i klassen.",
            "Observation i børnehaven.",
            "Møde med skolens ledelse og AKT-vejleder.",
        ],
    ),
    (
        NoteKind::NetworkMeeting,
        &[
            "Netværksmøde med familie, skole og PPR.",
            "Netværksmøde hjemme hos bedsteforældrene.",
            "Fælles møde i det tværgående team med forældrene.",
        ],
    ),
    (
        NoteKind::Other,
        &[
            "Sparring i teamet.",
            "Notat om sagens forløb.",
            "Opfølgning på aftaler.",
        ],
    ),
];

const MIDDLES: &[&str] = &[
    "{child} har haft bekymrende fravær de sidste tre uger, især mandage.",
    "Mor fortæller, at morgenerne er svære, og at {child} ofte har ondt i maven før skole.",
    "Far oplever, at {child} er mere glad efter skiftet til ny klasse.",
    "Der er uro i hjemmet efter forældrenes skilsmisse, og {child} sover dårligt.",
    "Skolen beskriver {child} som stille, men med gode venskaber i frikvarteret.",
    "{child} har svært ved overgangene i løbet af dagen og har brug for tydelig struktur.",
    "Familien har fået bolig i Gellerup og er ved at falde til.",
    "Bedstemor henter {child} to dage om ugen, hvilket giver ro i familien.",
    "Vi talte om søvn, kost og skærmtid, og familien vil prøve en fast aftenrutine.",
    "{child} deltager nu i fritidsklub i Århus V og er glad for fodbold.",
    "Der er aftalt en prøvehandling: kortere skoledage i fire uger med opfølgning.",
    "Sundhedsplejersken har set en positiv udvikling i vægt og trivsel.",
    "Forældrene ønsker mere samarbejde med skolen og hyppigere tilbagemeldinger.",
    "PPR har observeret, at {child} trives bedst i små grupper.",
    "Familien oplever, at hjælpen kommer tættere på hverdagen end før.",
];

const CLOSINGS: &[&str] = &[
    "Næste møde aftales i netværket.",
    "Tovholder følger op om to uger.",
    "Familien er informeret om notatet.",
    "Aftalerne blev skrevet ned sammen med familien.",
    "Vi evaluerer prøvehandlingen på næste møde.",
];

const CHILD_WORDS: &[&str] = &[
    "Jeg kan godt lide min lærer, men ikke når der er larm.",
    "Jeg vil gerne bo hos mor i hverdagen og hos far i weekenden.",
    "Det er svært at sove, når mor og far skændes.",
    "Jeg glæder mig til fodbold om torsdagen.",
    "Jeg har ondt i maven, når jeg skal i skole.",
    "Min bedste ven hedder Ali, og vi bygger huler.",
    "Jeg ville ønske, at nogen spurgte mig først.",
    "Det er rart at komme hos mormor.",
];

const FAMILY_PERSPECTIVES: &[&str] = &[
    "Mor ønsker hjælp til morgenrutinerne og at skolen ringer oftere.",
    "Far føler sig ikke hørt og vil gerne med til møderne.",
    "Forældrene er glade for, at der er én fast tovholder.",
    "Familien synes, at det går bedre, men er bekymret for sommerferien.",
    "Mor vil gerne have tolk med til næste møde.",
    "Forældrene oplever, at de selv har været med til at finde løsningerne.",
];

pub fn pick<'a>(rng: &mut StdRng, list: &[&'a str]) -> &'a str {
    list[rng.gen_range(0..list.len())]
}

pub fn adult_first(rng: &mut StdRng) -> &'static str {
    if rng.gen_bool(0.7) {
        pick(rng, WOMEN)
    } else {
        pick(rng, MEN)
    }
}

pub fn role(p: Profession) -> &'static str {
    match p {
        Profession::Caseworker => "Rådgiver",
        Profession::Psychologist => "PPR-psykolog",
        Profession::HealthVisitor => "Sundhedsplejerske",
        Profession::Educator => "Pædagog",
        Profession::SpecialEducator => "Specialpædagog",
        Profession::Leader => "Leder",
    }
}

/// The relations of a family and network of about `n` people.
pub fn family_shape(rng: &mut StdRng, n: usize) -> Vec<RelationToChild> {
    use RelationToChild::*;
    let mut out = vec![Mother, Father];
    let extra = [
        Sibling,
        Sibling,
        Grandparent,
        Grandparent,
        StepParent,
        OtherFamily,
        FriendNeighbour,
        Teacher,
        DaycareEducator,
        OtherProfessional,
        FosterParent,
    ];
    let want = rng.gen_range(n.saturating_sub(2).max(2)..=n + 2);
    while out.len() < want {
        out.push(extra[rng.gen_range(0..extra.len())]);
    }
    out
}

/// A name for a person of the given relation, and whether they hold custody.
pub fn person_name(rng: &mut StdRng, relation: RelationToChild, family: &str) -> (String, bool) {
    use RelationToChild::*;
    let (first, last, custody) = match relation {
        Mother => (pick(rng, WOMEN), family, true),
        Father => (
            pick(rng, MEN),
            if rng.gen_bool(0.6) {
                family
            } else {
                pick(rng, SURNAMES)
            },
            rng.gen_bool(0.8),
        ),
        StepParent | FosterParent => (
            adult_first(rng),
            pick(rng, SURNAMES),
            relation == FosterParent && rng.gen_bool(0.3),
        ),
        Sibling => (
            if rng.gen_bool(0.5) {
                pick(rng, GIRLS)
            } else {
                pick(rng, BOYS)
            },
            family,
            false,
        ),
        Grandparent => (adult_first(rng), pick(rng, SURNAMES), false),
        _ => (adult_first(rng), pick(rng, SURNAMES), false),
    };
    (format!("{first} {last}"), custody)
}

pub fn address(rng: &mut StdRng) -> String {
    format!(
        "{} {}, {}",
        pick(rng, STREETS),
        rng.gen_range(1..140),
        pick(rng, POSTCODES)
    )
}

pub fn note_body(rng: &mut StdRng, kind: NoteKind, child: &str) -> String {
    let openings = OPENINGS
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or(OPENINGS[0].1, |(_, o)| o);
    let mut s = pick(rng, openings).to_owned();
    for _ in 0..rng.gen_range(2..5) {
        s.push(' ');
        s.push_str(&pick(rng, MIDDLES).replace("{child}", child));
    }
    s.push(' ');
    s.push_str(pick(rng, CLOSINGS));
    s
}

pub fn child_words(rng: &mut StdRng) -> String {
    pick(rng, CHILD_WORDS).to_owned()
}

pub fn family_perspective(rng: &mut StdRng) -> String {
    pick(rng, FAMILY_PERSPECTIVES).to_owned()
}
