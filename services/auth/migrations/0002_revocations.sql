-- The source of truth for every revocation still inside an access token's lifetime (api.md
-- §2.4). Redis only caches these as markers: after Redis loses its data (a restart of the
-- built-in one keeps nothing) the reconciler rewrites every marker from this table before it
-- marks Redis ready again, and verifiers fail closed until then. Rows are written by triggers,
-- so no code path — a logout, a deactivation, a user deletion cascading its sessions — can
-- forget one. `key` is the Redis key of payplane_authn::revocation (`auth:revoked:sid:<sid>`,
-- `auth:tokver:<userId>`); `value` the marker's value.
CREATE TABLE revocations (
    key        text PRIMARY KEY,
    value      bigint NOT NULL,
    revoked_at timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now())
);
CREATE INDEX revocations_revoked_at ON revocations (revoked_at);

CREATE FUNCTION record_revocation(k text, v bigint) RETURNS void LANGUAGE sql AS $$
    INSERT INTO revocations (key, value) VALUES (k, v)
    ON CONFLICT (key) DO UPDATE
        SET value = GREATEST(revocations.value, EXCLUDED.value),
            revoked_at = EXCLUDED.revoked_at;
$$;

-- A session ended (revoked_at set), or removed while still active (a user's deletion
-- cascading to its sessions).
CREATE FUNCTION sessions_record_revocation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.revoked_at IS NULL AND OLD.expires_at > now() THEN
            PERFORM record_revocation('auth:revoked:sid:' || OLD.id, 1);
        END IF;
        RETURN OLD;
    END IF;
    IF NEW.revoked_at IS NOT NULL AND OLD.revoked_at IS NULL THEN
        PERFORM record_revocation('auth:revoked:sid:' || NEW.id, 1);
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER sessions_revocation AFTER UPDATE OF revoked_at OR DELETE ON sessions
    FOR EACH ROW EXECUTE FUNCTION sessions_record_revocation();

-- A token version raised (role change, deactivation, password change), or the user deleted:
-- every token it ever got carries a version below the marker.
CREATE FUNCTION users_record_revocation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM record_revocation('auth:tokver:' || OLD.id, OLD.token_version + 1);
        RETURN OLD;
    END IF;
    IF NEW.token_version > OLD.token_version THEN
        PERFORM record_revocation('auth:tokver:' || NEW.id, NEW.token_version);
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER users_revocation AFTER UPDATE OF token_version OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION users_record_revocation();

-- What happened before this migration, as far as it is still known.
INSERT INTO revocations (key, value, revoked_at)
SELECT 'auth:revoked:sid:' || id, 1, revoked_at FROM sessions
 WHERE revoked_at > now() - interval '1 day'
ON CONFLICT (key) DO NOTHING;
INSERT INTO revocations (key, value, revoked_at)
SELECT 'auth:tokver:' || id, token_version, updated_at FROM users
 WHERE token_version > 1 AND updated_at > now() - interval '1 day'
ON CONFLICT (key) DO NOTHING;
