-- The per-status counters' update trigger, planned on each call (EXECUTE). PL/pgSQL plans a query without
-- parameters once per connection and keeps that plan, made for the row count of its first call: after a first
-- update of one row, the join of the transition tables stayed a nested loop for good, and a later statement of
-- 2,000 rows (a block's receipts, a signed batch) spent 0.5 s in this trigger alone, quadratic in its rows. Now
-- 50 ms. One join, not two (UNION ALL): each changed row gives its leaving and its entering line. Same counts as
-- 0019's version.
CREATE OR REPLACE FUNCTION status_counts_on_update() RETURNS trigger AS $$
BEGIN
  EXECUTE $q$
    INSERT INTO status_count_deltas (chain_id, signer, status, delta, entered)
    SELECT x.chain_id, x.signer, x.status, sum(x.delta), sum(x.entered)
    FROM old_rows o JOIN new_rows n ON n.id = o.id
    CROSS JOIN LATERAL (VALUES (o.chain_id, o.signer, o.status, -1, 0),
                               (n.chain_id, n.signer, n.status, 1, CASE WHEN n.status IS DISTINCT FROM o.status THEN 1 ELSE 0 END))
      AS x(chain_id, signer, status, delta, entered)
    WHERE n.status IS DISTINCT FROM o.status OR n.chain_id <> o.chain_id OR n.signer <> o.signer
    GROUP BY 1, 2, 3 HAVING sum(x.delta) <> 0 OR sum(x.entered) > 0
  $q$;
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;
