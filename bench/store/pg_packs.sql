-- meterbench results store, PostgreSQL only: the accuracy points packed per run for the
-- audit (meterbench.point_packs/2), applied after schema.sql at every connection.
--
-- The audit reads the points of a year of runs at once. Sent as rows, their number was
-- the floor of its time: the server took 0.9-1.6 s to send the 2.2 million rows of
-- 100 000 runs, their 100 000 packs 0.13 s. The embedded store keeps its points as
-- Parquet files for the same reason; here the server keeps them, next to the rows.
--
-- A pack is derived, never written by hand: triggers on `points` rebuild the packs of the
-- runs every statement changes (a filing's COPY, an UPDATE by SQL, a run deleted with its
-- points, a TRUNCATE), in the statement's own transaction, so a reader sees a run's rows
-- and its pack alike. The format (per point, in the order of step index then port: the
-- `int4send`, `float8send` and `boolsend` forms of step_index, mpe_percent,
-- error_percent and accepted, then step_name and port as a 4-byte length and UTF-8) is
-- read by meterbench-pgcopy's `pack` module. A run with no points has no pack.
--
-- The functions run as their owner (the store's owner, who applied this) with the
-- search path they were made under: a station's role needs no rights on the packs, and a
-- session's own search path cannot point them at another schema's tables.
--
-- Applied when a store lacks it (store_meta 'point_packs' says which version is there, and
-- is raised whenever anything below changes, so that a store gets the new functions;
-- the four triggers must be there and enabled): the triggers' DDL locks `points` against
-- writers, so it is not repeated at every connection. A store made before the packs, or
-- whose triggers were dropped or disabled, gains them here, every pack rebuilt from its
-- rows (once, for 100 000 runs about 10 s, filings waiting meanwhile). It needs the owner
-- of `points` and PostgreSQL 14 or later.

DO $packs$
BEGIN
    IF EXISTS (SELECT 1 FROM store_meta
               WHERE meta_key = 'point_packs' AND meta_value = 'meterbench.point_packs/2')
       AND (SELECT count(*) FROM pg_trigger
            WHERE tgrelid = 'points'::regclass AND tgenabled = 'O'
              AND tgname IN ('points_added', 'points_removed', 'points_changed',
                             'points_emptied')) = 4 THEN
        RETURN;
    END IF;

    CREATE TABLE IF NOT EXISTS point_packs (
        run_id VARCHAR(200) NOT NULL PRIMARY KEY REFERENCES runs (run_id) ON DELETE CASCADE,
        pack   BYTEA        NOT NULL
    );

    -- Rebuild the packs of the runs `ids` from their points. Two transactions changing
    -- one run's points take turns on its row of `runs` (row locks: a bulk filing's
    -- hundred thousand runs need no lock table), so the later one packs, in a snapshot of
    -- its own statement, the earlier one's rows too.
    CREATE OR REPLACE FUNCTION meterbench_repack(ids VARCHAR[]) RETURNS void
    LANGUAGE sql SECURITY DEFINER SET search_path FROM CURRENT AS $repack$
        SELECT 1 FROM runs r JOIN unnest(ids) AS c (run_id) ON r.run_id = c.run_id
            ORDER BY r.run_id FOR NO KEY UPDATE OF r;
        DELETE FROM point_packs k USING unnest(ids) AS c (run_id) WHERE k.run_id = c.run_id;
        INSERT INTO point_packs (run_id, pack)
        SELECT p.run_id,
               string_agg(int4send(p.step_index)
                          || float8send(p.mpe_percent)
                          || float8send(p.error_percent)
                          || boolsend(p.accepted)
                          || int4send(octet_length(convert_to(p.step_name, 'UTF8')))
                          || convert_to(p.step_name, 'UTF8')
                          || int4send(octet_length(convert_to(p.port, 'UTF8')))
                          || convert_to(p.port, 'UTF8'),
                          ''::bytea ORDER BY p.step_index, p.port)
        FROM points p JOIN unnest(ids) AS c (run_id) ON p.run_id = c.run_id
        GROUP BY p.run_id;
    $repack$;

    -- After any statement on `points`: the packs of the runs it touched, rebuilt. The
    -- transition tables are named by the triggers below.
    CREATE OR REPLACE FUNCTION meterbench_points_changed() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $changed$
    DECLARE
        ids VARCHAR[];
    BEGIN
        IF TG_OP = 'INSERT' THEN
            SELECT array_agg(DISTINCT run_id) INTO ids FROM points_added;
        ELSIF TG_OP = 'DELETE' THEN
            SELECT array_agg(DISTINCT run_id) INTO ids FROM points_removed;
        ELSIF TG_OP = 'UPDATE' THEN
            -- A run id changed moves points between two runs: both are rebuilt.
            SELECT array_agg(DISTINCT run_id) INTO ids
            FROM (SELECT run_id FROM points_added
                  UNION ALL SELECT run_id FROM points_removed) AS c;
        ELSE
            DELETE FROM point_packs;
        END IF;
        IF ids IS NOT NULL THEN
            PERFORM meterbench_repack(ids);
        END IF;
        RETURN NULL;
    END
    $changed$;

    CREATE OR REPLACE TRIGGER points_added AFTER INSERT ON points
        REFERENCING NEW TABLE AS points_added
        FOR EACH STATEMENT EXECUTE FUNCTION meterbench_points_changed();
    CREATE OR REPLACE TRIGGER points_removed AFTER DELETE ON points
        REFERENCING OLD TABLE AS points_removed
        FOR EACH STATEMENT EXECUTE FUNCTION meterbench_points_changed();
    CREATE OR REPLACE TRIGGER points_changed AFTER UPDATE ON points
        REFERENCING OLD TABLE AS points_removed NEW TABLE AS points_added
        FOR EACH STATEMENT EXECUTE FUNCTION meterbench_points_changed();
    CREATE OR REPLACE TRIGGER points_emptied AFTER TRUNCATE ON points
        FOR EACH STATEMENT EXECUTE FUNCTION meterbench_points_changed();
    -- Made anew, or disabled since: enabled (a dropped one is made enabled).
    ALTER TABLE points ENABLE TRIGGER points_added;
    ALTER TABLE points ENABLE TRIGGER points_removed;
    ALTER TABLE points ENABLE TRIGGER points_changed;
    ALTER TABLE points ENABLE TRIGGER points_emptied;

    -- The points filed before the packs were (or while the triggers were not there).
    PERFORM meterbench_repack(ARRAY(SELECT DISTINCT run_id FROM points));

    INSERT INTO store_meta (meta_key, meta_value)
        VALUES ('point_packs', 'meterbench.point_packs/2')
        ON CONFLICT (meta_key) DO UPDATE SET meta_value = EXCLUDED.meta_value;
END
$packs$;
