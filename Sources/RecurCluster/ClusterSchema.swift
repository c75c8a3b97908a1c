/// The cluster's tables in PostgreSQL, created and migrated by recurd (docs/CLUSTER.md,
/// "Schema"). Every name starts with `recur_`, so a cluster can share a database.
enum ClusterSchema {
    /// 1: the first layout.
    static let version: Int64 = 1

    /// Serializes migrations between nodes starting together (pg_advisory_xact_lock's key).
    static let migrationLock: Int64 = 0x7265_6375_72  // "recur"

    /// Creates what is missing, in one transaction (with `migrationLock` held).
    static let create = """
        CREATE TABLE IF NOT EXISTS recur_meta(key text PRIMARY KEY, value bigint NOT NULL);
        CREATE TABLE IF NOT EXISTS recur_checkpoint(
            stream text PRIMARY KEY, grp integer NOT NULL, model bigint NOT NULL, vocabulary bigint NOT NULL,
            "offset" bigint NOT NULL, record bytea NOT NULL, node text);
        CREATE INDEX IF NOT EXISTS recur_checkpoint_by_group ON recur_checkpoint(grp);
        CREATE TABLE IF NOT EXISTS recur_log(
            id bigserial PRIMARY KEY, stream text NOT NULL, grp integer NOT NULL, vocabulary bigint NOT NULL,
            owner bigint NOT NULL, "offset" bigint NOT NULL, end_offset bigint NOT NULL, tokens bytea NOT NULL,
            pending bytea NOT NULL, created double precision, node text);
        CREATE INDEX IF NOT EXISTS recur_log_by_stream ON recur_log(stream, id);
        CREATE INDEX IF NOT EXISTS recur_log_by_group ON recur_log(grp);
        CREATE TABLE IF NOT EXISTS recur_node(
            node text PRIMARY KEY, peer_address text NOT NULL, client_address text NOT NULL,
            started timestamptz NOT NULL, heartbeat timestamptz NOT NULL, leaving boolean NOT NULL DEFAULT false);
        CREATE TABLE IF NOT EXISTS recur_lease(
            grp integer PRIMARY KEY, node text, epoch bigint NOT NULL DEFAULT 0,
            expires timestamptz NOT NULL DEFAULT 'epoch', acquired timestamptz);
        """

    /// The group commit (`p_node` is also the node column of private streams, group -1): applies a batch of operations in order, in the caller's transaction,
    /// after checking that `p_node` holds each group it writes at the epoch it believes
    /// (Temporal's range-id fence). The lease rows stay share-locked to the end of the
    /// transaction, so a takeover (which bumps the epoch) waits for the batch or comes before
    /// it and refuses it: a node that lost a group can never write into it. One round trip for
    /// any number of streams.
    static let commitFunction = """
        CREATE OR REPLACE FUNCTION recur_commit(
            p_node text, p_groups integer[], p_epochs bigint[], p_kind text[], p_stream text[], p_grp integer[],
            p_offset bigint[], p_end bigint[], p_tokens bytea[], p_pending bytea[], p_owner bigint[],
            p_created double precision[], p_vocabulary bigint[], p_model bigint[], p_record bytea[],
            p_source text[], p_history bigint) RETURNS void AS $$
        DECLARE
            held integer;
            i integer;
        BEGIN
            SELECT count(*) INTO held FROM (
                SELECT l.grp FROM recur_lease l, unnest(p_groups, p_epochs) AS f(grp, epoch)
                WHERE l.grp = f.grp AND l.epoch = f.epoch AND l.node = p_node FOR SHARE OF l) AS locked;
            IF held <> coalesce(array_length(p_groups, 1), 0) THEN
                RAISE EXCEPTION 'fenced: node % no longer holds the lease of every key group it writes', p_node
                    USING ERRCODE = 'RC001';
            END IF;
            FOR i IN 1 .. coalesce(array_length(p_kind, 1), 0) LOOP
                IF p_kind[i] = 'append' THEN
                    IF p_offset[i] = 0 THEN
                        DELETE FROM recur_log WHERE stream = p_stream[i];
                        DELETE FROM recur_checkpoint WHERE stream = p_stream[i];
                    END IF;
                    INSERT INTO recur_log(stream, grp, vocabulary, owner, "offset", end_offset, tokens, pending, created, node)
                        VALUES (p_stream[i], p_grp[i], p_vocabulary[i], p_owner[i], p_offset[i], p_end[i], p_tokens[i],
                                p_pending[i], p_created[i], CASE WHEN p_grp[i] < 0 THEN p_node END);
                ELSIF p_kind[i] = 'checkpoint' OR p_kind[i] = 'rebase' THEN
                    IF p_kind[i] = 'rebase' THEN
                        DELETE FROM recur_log WHERE stream = p_stream[i];
                    END IF;
                    INSERT INTO recur_checkpoint(stream, grp, model, vocabulary, "offset", record, node)
                        VALUES (p_stream[i], p_grp[i], p_model[i], p_vocabulary[i], p_offset[i], p_record[i],
                                CASE WHEN p_grp[i] < 0 THEN p_node END)
                        ON CONFLICT (stream) DO UPDATE SET grp = excluded.grp, model = excluded.model,
                            vocabulary = excluded.vocabulary, "offset" = excluded."offset", record = excluded.record;
                    IF p_kind[i] = 'checkpoint' THEN
                        -- Empty rows (held text only) up to here are older than the checkpoint's held text.
                        DELETE FROM recur_log WHERE stream = p_stream[i] AND "offset" = end_offset AND end_offset <= p_offset[i];
                        IF p_offset[i] > p_history THEN
                            DELETE FROM recur_log WHERE stream = p_stream[i] AND end_offset <= p_offset[i];
                        END IF;
                    ELSIF p_source[i] <> '' AND p_offset[i] <= p_history THEN
                        INSERT INTO recur_log(stream, grp, vocabulary, owner, "offset", end_offset, tokens, pending, created, node)
                            SELECT p_stream[i], p_grp[i], vocabulary, p_owner[i], "offset", end_offset, tokens, pending, p_created[i],
                                   CASE WHEN p_grp[i] < 0 THEN p_node END
                            FROM recur_log WHERE stream = p_source[i] AND end_offset <= p_offset[i] ORDER BY id;
                    END IF;
                ELSIF p_kind[i] = 'end' THEN
                    DELETE FROM recur_log WHERE stream = p_stream[i];
                    DELETE FROM recur_checkpoint WHERE stream = p_stream[i];
                ELSE
                    RAISE EXCEPTION 'recur_commit: unknown operation %', p_kind[i];
                END IF;
            END LOOP;
        END
        $$ LANGUAGE plpgsql;
        """
}
