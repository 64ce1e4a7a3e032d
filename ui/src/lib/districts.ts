// The Aarhus local districts (lokaldistrikter), each with one cross-disciplinary team.
export const DISTRICTS = [
  "Søndervang", "Ellehøj", "Åby", "Bavnehøj", "Bakkegård", "Tilst", "Sødal", "Gammelgaard", "Engdal", "Skjoldhøj", "Sabro-Korsvej",
];
