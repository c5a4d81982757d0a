-- Which customers' classification input ('facts': fields, orders,
-- interactions) or stored classes ('classes') changed, in commit order:
-- a server keeping everyone's measured metrics and classes in memory reads
-- what changed since it last looked instead of everything. Written in the
-- same transaction as the change. customer_id NULL: any customer may have
-- changed (a bulk load, a repair, a run that changed many). No foreign key:
-- a deleted customer's entry must stay.
CREATE TABLE change_feed (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('facts', 'classes')),
    customer_id INTEGER,
    changed_at TEXT NOT NULL
);
