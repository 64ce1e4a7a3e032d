// The standard legal bases for sharing with a participant from another sector when no valid
// consent covers it, written "<basis>: <reason>". The labels are the Rust side's
// (feltkontor_domain::legal_basis); a Rust test checks this file against them.
export const LEGAL_BASES = [
  { id: "cross_sector_exchange", label: "Udveksling efter servicelovens § 49 b" },
  { id: "notification", label: "Underretning" },
  { id: "significance_rule", label: "Væsentlighedsreglen" },
] as const;

export type LegalBasisId = (typeof LEGAL_BASES)[number]["id"];

export function composeLegalBasis(id: LegalBasisId | "", reason: string): string | null {
  const basis = LEGAL_BASES.find((b) => b.id === id);
  return basis ? `${basis.label}: ${reason.trim()}` : null;
}
