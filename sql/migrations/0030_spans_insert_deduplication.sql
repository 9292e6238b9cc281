-- The span writer's inserts from its write-ahead log carry a deduplication token (the SHA-256 of
-- the rows sent), so that a retry after a lost answer, or a replay after a crash, of the same
-- batch stores nothing the second time. A plain MergeTree table honours the token only when it
-- keeps the tokens of its recent inserts: the last 10 000 insert blocks of `spans` (one block per
-- partition touched by an insert). An insert without a token is deduplicated by the hash of its
-- data; our rows carry `inserted_at`, so only byte-identical blocks within a millisecond are.
ALTER TABLE spans MODIFY SETTING non_replicated_deduplication_window = 10000;
