-- People can be found by their address too (a worker looking up who lives at an address). A
-- protected address (navne- og adressebeskyttelse) is never indexed: a search must not tell
-- that someone lives there, not even on the coordinator's own computer.
DROP TABLE persons_fts;
CREATE VIRTUAL TABLE persons_fts USING fts5 (
    name, relation, address,
    tokenize = 'unicode61 remove_diacritics 2',
    prefix = '2 3'
);
INSERT INTO persons_fts (rowid, name, relation, address)
    SELECT rid, fold_da(name), fold_da(relation_label_da(relation)),
           CASE WHEN protected_address THEN '' ELSE fold_da(COALESCE(address, '')) END
    FROM persons
    WHERE archived = 0
      AND rid <= COALESCE((SELECT indexed_upto FROM search_backlog WHERE tbl = 'persons'), 9223372036854775807);
