-- Handovers the new coordinator has acknowledged on this computer: until then the handover
-- (its note, the checklist of open agreements and promises) stays on their "Min uge".
CREATE TABLE handover_seen (
  handover_id TEXT PRIMARY KEY
);
