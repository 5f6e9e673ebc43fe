//! The server's own guard of a team project, so a member who skips the app and types SQL can
//! do no more than the app lets them: one login role per member (SCRAM-SHA-256 passwords,
//! made by the lead), a group role per job, grants, row-level security on every layer, a
//! trigger that keeps verdicts to reviewers, and `SECURITY DEFINER` functions for the moves
//! through review and for making blind copies.
//!
//! The lead who ran `team init` connects as the tables' owner: the owner passes every policy
//! (PostgreSQL's rule for owners), and its client names the member it acts for. Every other
//! connection is a member's own login role; the functions below learn who it is from
//! `session_user`, never from anything the client says.

use super::*;

/// Statements of the guard, separated by lines holding only `--;` (function bodies keep
/// their own semicolons). `{a}`, `{r}`, `{l}` are the group roles of annotators, reviewers
/// and leads; `{layer_tables}` is filled with the blind copy's table statements.
const GUARD: &str = r#"
CREATE OR REPLACE FUNCTION public.thyme_is_owner() RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $f$
  SELECT pg_has_role(session_user, c.relowner, 'USAGE') FROM pg_class c WHERE c.oid = 'public.assignments'::regclass
$f$
--;
CREATE OR REPLACE FUNCTION public.thyme_me() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $f$
  SELECT name FROM public.members WHERE login_role = session_user::text AND removed_at_ms IS NULL
$f$
--;
CREATE OR REPLACE FUNCTION public.thyme_my_role() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $f$
  SELECT role FROM public.members WHERE login_role = session_user::text AND removed_at_ms IS NULL
$f$
--;
CREATE OR REPLACE FUNCTION public.thyme_may_read(p_image text, p_layer text) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $f$
  SELECT CASE public.thyme_my_role()
    WHEN 'lead' THEN true
    WHEN 'reviewer' THEN true
    WHEN 'annotator' THEN EXISTS (
      SELECT 1 FROM public.assignments a
      WHERE a.image_id = p_image AND a.layer = p_layer AND a.annotator = public.thyme_me())
    ELSE false END
$f$
--;
CREATE OR REPLACE FUNCTION public.thyme_may_write(p_image text, p_layer text) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $f$
  SELECT CASE public.thyme_my_role()
    WHEN 'lead' THEN true
    WHEN 'reviewer' THEN EXISTS (
      SELECT 1 FROM public.assignments a
      WHERE a.image_id = p_image AND a.layer = p_layer
        AND a.state IN ('submitted', 'in_review', 'fixed', 'accepted', 'rejected'))
    WHEN 'annotator' THEN EXISTS (
      SELECT 1 FROM public.assignments a
      WHERE a.image_id = p_image AND a.layer = p_layer AND a.annotator = public.thyme_me()
        AND a.state IN ('todo', 'in_progress', 'rejected'))
    ELSE false END
$f$
--;
CREATE OR REPLACE FUNCTION public.thyme_caller(p_actor text) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $f$
DECLARE me text := public.thyme_me();
BEGIN
  IF me IS NULL THEN
    IF public.thyme_is_owner() THEN
      RETURN p_actor;
    END IF;
    RAISE EXCEPTION 'the login % is not a member of this team', session_user USING ERRCODE = '42501';
  END IF;
  IF me <> p_actor THEN
    RAISE EXCEPTION 'signed in as %, not as %', me, p_actor USING ERRCODE = '42501';
  END IF;
  RETURN me;
END
$f$
--;
CREATE OR REPLACE FUNCTION public.thyme_touch(p_assignment bigint, p_actor text, p_now bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $f$
DECLARE me text := public.thyme_caller(p_actor);
BEGIN
  UPDATE public.assignments SET lease_expires_ms = p_now + lease_ms, updated_at_ms = p_now,
    state = CASE WHEN state = 'todo' THEN 'in_progress' ELSE state END
  WHERE id = p_assignment AND annotator = me AND state IN ('todo', 'in_progress', 'rejected');
  IF NOT FOUND THEN
    RAISE EXCEPTION 'item % is not yours to edit now', p_assignment USING ERRCODE = '42501';
  END IF;
END
$f$
--;
CREATE OR REPLACE FUNCTION public.thyme_move(p_assignment bigint, p_actor text, p_to text,
  p_reason text, p_note text, p_snapshot text, p_now bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $f$
DECLARE
  me text := public.thyme_caller(p_actor);
  my_role text;
  a public.assignments%ROWTYPE;
BEGIN
  SELECT role INTO my_role FROM public.members WHERE name = me AND removed_at_ms IS NULL;
  SELECT * INTO a FROM public.assignments WHERE id = p_assignment FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no item %', p_assignment USING ERRCODE = '42501';
  END IF;
  IF NOT (
    (a.annotator = me AND (a.state, p_to) IN (('todo', 'in_progress'), ('todo', 'submitted'),
      ('in_progress', 'submitted'), ('rejected', 'fixed')))
    OR (my_role IN ('reviewer', 'lead') AND (a.state, p_to) IN (('submitted', 'in_review'),
      ('fixed', 'in_review'), ('in_review', 'accepted'), ('in_review', 'rejected'),
      ('accepted', 'in_review'), ('rejected', 'in_review')))
  ) THEN
    RAISE EXCEPTION '% (%) may not move item % from % to %', me, coalesce(my_role, 'no member'),
      p_assignment, a.state, p_to USING ERRCODE = '42501';
  END IF;
  UPDATE public.assignments SET state = p_to,
    reason = CASE WHEN p_to = 'rejected' THEN p_reason ELSE reason END,
    note = CASE WHEN p_to = 'rejected' THEN p_note ELSE note END,
    submitted_state = coalesce(p_snapshot, submitted_state), updated_at_ms = p_now
  WHERE id = p_assignment;
  INSERT INTO public.review_events (assignment_id, actor, from_state, to_state, reason, note, at_ms)
  VALUES (p_assignment, me, a.state, p_to, p_reason, p_note, p_now);
END
$f$
--;
CREATE OR REPLACE FUNCTION public.thyme_guard_verdict() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $f$
BEGIN
  IF public.thyme_my_role() = 'annotator' AND NEW.review IS NOT NULL
     AND NEW.review::jsonb ->> 'verdict' = 'accepted'
     AND (TG_OP = 'INSERT' OR NEW.review IS DISTINCT FROM OLD.review) THEN
    RAISE EXCEPTION 'annotators do not give verdicts' USING ERRCODE = '42501';
  END IF;
  RETURN NEW;
END
$f$
--;
CREATE OR REPLACE FUNCTION public.thyme_secure_layer(p_schema text, p_member text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $f$
DECLARE
  s text := quote_ident(p_schema);
  l text := CASE WHEN p_schema = 'public' THEN 'main' ELSE p_schema END;
  t text;
  col text;
  login text;
  g text;
BEGIN
  FOREACH g IN ARRAY ARRAY['{a}', '{r}', '{l}'] LOOP
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s.images, %s.regions, %s.questions, %s.question_regions, %s.journal TO %I', s, s, s, s, s, g);
    EXECUTE format('GRANT USAGE ON ALL SEQUENCES IN SCHEMA %s TO %I', s, g);
  END LOOP;
  IF p_schema <> 'public' THEN
    EXECUTE format('REVOKE ALL ON SCHEMA %s FROM PUBLIC', s);
    EXECUTE format('GRANT USAGE ON SCHEMA %s TO %I, %I', s, '{r}', '{l}');
    SELECT m.login_role INTO login FROM public.members m WHERE m.name = p_member;
    IF login IS NOT NULL THEN
      EXECUTE format('GRANT USAGE ON SCHEMA %s TO %I', s, login);
    END IF;
  END IF;
  FOREACH t IN ARRAY ARRAY['images', 'regions', 'questions'] LOOP
    col := CASE WHEN t = 'images' THEN 'id' ELSE 'image_id' END;
    EXECUTE format('ALTER TABLE %s.%I ENABLE ROW LEVEL SECURITY', s, t);
    EXECUTE format('DROP POLICY IF EXISTS thyme_see ON %s.%I', s, t);
    EXECUTE format('DROP POLICY IF EXISTS thyme_add ON %s.%I', s, t);
    EXECUTE format('DROP POLICY IF EXISTS thyme_change ON %s.%I', s, t);
    EXECUTE format('DROP POLICY IF EXISTS thyme_remove ON %s.%I', s, t);
    EXECUTE format('CREATE POLICY thyme_see ON %s.%I FOR SELECT USING (public.thyme_may_read(%I, %L))', s, t, col, l);
    EXECUTE format('CREATE POLICY thyme_add ON %s.%I FOR INSERT WITH CHECK (public.thyme_may_write(%I, %L))', s, t, col, l);
    EXECUTE format('CREATE POLICY thyme_change ON %s.%I FOR UPDATE USING (public.thyme_may_write(%I, %L)) WITH CHECK (public.thyme_may_write(%I, %L))', s, t, col, l, col, l);
    EXECUTE format('CREATE POLICY thyme_remove ON %s.%I FOR DELETE USING (public.thyme_may_write(%I, %L))', s, t, col, l);
    EXECUTE format('DROP TRIGGER IF EXISTS thyme_verdicts ON %s.%I', s, t);
    EXECUTE format('CREATE TRIGGER thyme_verdicts BEFORE INSERT OR UPDATE ON %s.%I FOR EACH ROW EXECUTE FUNCTION public.thyme_guard_verdict()', s, t);
  END LOOP;
  EXECUTE format('ALTER TABLE %s.question_regions ENABLE ROW LEVEL SECURITY', s);
  EXECUTE format('DROP POLICY IF EXISTS thyme_see ON %s.question_regions', s);
  EXECUTE format('DROP POLICY IF EXISTS thyme_write ON %s.question_regions', s);
  EXECUTE format('CREATE POLICY thyme_see ON %s.question_regions FOR SELECT USING (public.thyme_may_read((SELECT q.image_id FROM %s.questions q WHERE q.id = question_id), %L))', s, s, l);
  EXECUTE format('CREATE POLICY thyme_write ON %s.question_regions FOR ALL USING (public.thyme_may_write((SELECT q.image_id FROM %s.questions q WHERE q.id = question_id), %L)) WITH CHECK (public.thyme_may_write((SELECT q.image_id FROM %s.questions q WHERE q.id = question_id), %L))', s, s, l, s, l);
  EXECUTE format('ALTER TABLE %s.journal ENABLE ROW LEVEL SECURITY', s);
  EXECUTE format('DROP POLICY IF EXISTS thyme_see ON %s.journal', s);
  EXECUTE format('DROP POLICY IF EXISTS thyme_add ON %s.journal', s);
  EXECUTE format('DROP POLICY IF EXISTS thyme_change ON %s.journal', s);
  EXECUTE format('CREATE POLICY thyme_see ON %s.journal FOR SELECT USING (public.thyme_my_role() IN (''reviewer'', ''lead'') OR actor = public.thyme_me())', s);
  EXECUTE format('CREATE POLICY thyme_add ON %s.journal FOR INSERT WITH CHECK (public.thyme_my_role() = ''lead'' OR actor = public.thyme_me())', s);
  EXECUTE format('CREATE POLICY thyme_change ON %s.journal FOR UPDATE USING (public.thyme_my_role() = ''lead'' OR actor = public.thyme_me()) WITH CHECK (public.thyme_my_role() = ''lead'' OR actor = public.thyme_me())', s);
END
$f$
--;
CREATE OR REPLACE FUNCTION public.thyme_make_layer(p_schema text, p_member text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $f$
BEGIN
  IF NOT (public.thyme_is_owner() OR public.thyme_my_role() = 'lead') THEN
    RAISE EXCEPTION 'only leads make blind copies' USING ERRCODE = '42501';
  END IF;
  IF p_schema !~ '^blind_[a-z0-9._-]{1,32}$' THEN
    RAISE EXCEPTION '% is not a blind copy''s name', p_schema USING ERRCODE = '22023';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = p_schema) THEN
    EXECUTE format('CREATE SCHEMA %I', p_schema);
    PERFORM set_config('search_path', quote_ident(p_schema) || ', public, pg_temp', true);
{layer_tables}
    PERFORM set_config('search_path', 'public, pg_temp', true);
  END IF;
  PERFORM public.thyme_secure_layer(p_schema, p_member);
END
$f$
"#;

/// Grants and policies on the shared tables (`{a}`, `{r}`, `{l}` as in [`GUARD`]).
const SHARED: &str = r#"
REVOKE ALL ON SCHEMA public FROM PUBLIC
--;
GRANT USAGE ON SCHEMA public TO "{a}", "{r}", "{l}"
--;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA public FROM PUBLIC
--;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO "{a}", "{r}", "{l}"
--;
GRANT SELECT ON team_schema, project_schema, members, categories TO "{a}", "{r}", "{l}"
--;
GRANT INSERT ON categories TO "{a}", "{r}", "{l}"
--;
GRANT DELETE ON categories TO "{r}", "{l}"
--;
GRANT SELECT, INSERT ON changes, sync_log TO "{a}", "{r}", "{l}"
--;
GRANT SELECT (id, batch_id, image_id, annotator, layer, lease_ms, lease_expires_ms, state, reason, note, updated_at_ms) ON assignments TO "{a}"
--;
GRANT SELECT ON assignments, batches, review_events, gold TO "{r}", "{l}"
--;
GRANT INSERT, UPDATE, DELETE ON assignments, batches, gold, review_events TO "{l}"
--;
GRANT SELECT ON comments TO "{a}", "{r}", "{l}"
--;
GRANT INSERT ON comments TO "{r}", "{l}"
--;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO "{a}", "{r}", "{l}"
--;
ALTER TABLE assignments ENABLE ROW LEVEL SECURITY
--;
DROP POLICY IF EXISTS thyme_see ON assignments
--;
CREATE POLICY thyme_see ON assignments FOR SELECT USING (public.thyme_my_role() IN ('reviewer', 'lead') OR annotator = public.thyme_me())
--;
DROP POLICY IF EXISTS thyme_lead ON assignments
--;
CREATE POLICY thyme_lead ON assignments FOR ALL USING (public.thyme_my_role() = 'lead') WITH CHECK (public.thyme_my_role() = 'lead')
--;
ALTER TABLE changes ENABLE ROW LEVEL SECURITY
--;
DROP POLICY IF EXISTS thyme_see ON changes
--;
CREATE POLICY thyme_see ON changes FOR SELECT USING (public.thyme_my_role() IN ('reviewer', 'lead') OR actor = public.thyme_me() OR public.thyme_may_read(image_id, layer))
--;
DROP POLICY IF EXISTS thyme_add ON changes
--;
CREATE POLICY thyme_add ON changes FOR INSERT WITH CHECK (public.thyme_my_role() = 'lead' OR (actor = public.thyme_me() AND public.thyme_may_read(image_id, layer)))
--;
ALTER TABLE sync_log ENABLE ROW LEVEL SECURITY
--;
DROP POLICY IF EXISTS thyme_own ON sync_log
--;
CREATE POLICY thyme_own ON sync_log FOR ALL USING (public.thyme_my_role() = 'lead' OR actor = public.thyme_me()) WITH CHECK (public.thyme_my_role() = 'lead' OR actor = public.thyme_me())
--;
ALTER TABLE comments ENABLE ROW LEVEL SECURITY
--;
DROP POLICY IF EXISTS thyme_see ON comments
--;
CREATE POLICY thyme_see ON comments FOR SELECT USING (public.thyme_may_read(image_id, layer))
--;
DROP POLICY IF EXISTS thyme_add ON comments
--;
CREATE POLICY thyme_add ON comments FOR INSERT WITH CHECK (public.thyme_my_role() IN ('reviewer', 'lead') AND author = public.thyme_me())
"#;

/// Run statements separated by `--;` lines.
fn run_blocks(db: &mut dyn Db, script: &str) -> Result<(), StoreError> {
    for statement in script.split("\n--;\n") {
        if !statement.trim().is_empty() {
            db.exec(statement, &[])?;
        }
    }
    Ok(())
}

/// The group role of a job in the team tagged `tag`.
pub(super) fn group_role(tag: &str, role: Role) -> String {
    format!("{tag}_{}", role.as_str())
}

/// The login role of a member in the team tagged `tag`.
pub(super) fn login_role(tag: &str, member: &str) -> String {
    format!("{tag}_m_{member}")
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The team's tag (names its roles; one cluster may hold many teams).
pub(super) fn team_tag(db: &mut dyn Db) -> Result<String, StoreError> {
    db.row("SELECT tag FROM public.team_schema", &[])?
        .map(|r| r.opt_text(0))
        .transpose()?
        .flatten()
        .ok_or_else(|| StoreError::Corrupt {
            table: "team_schema",
            reason: "no team tag".into(),
        })
}

/// Put the guard in place (idempotent): group roles, functions, grants, policies on the
/// shared tables and on every blind copy. Run by the owner.
pub(super) fn install(db: &mut dyn Db) -> Result<(), StoreError> {
    let tag = team_tag(db)?;
    let groups = Role::ALL.map(|r| group_role(&tag, r));
    for g in &groups {
        let exists = db.count(
            "SELECT count(*) FROM pg_roles WHERE rolname = ?1",
            vals![g.as_str()],
        )? > 0;
        if !exists {
            db.exec(&format!("CREATE ROLE {} NOLOGIN", quote_ident(g)), &[])?;
        }
    }
    let database = db
        .row("SELECT current_database()::text", &[])?
        .map(|r| r.text(0))
        .transpose()?
        .unwrap_or_default();
    db.exec(
        &format!(
            "REVOKE ALL ON DATABASE {} FROM PUBLIC",
            quote_ident(&database)
        ),
        &[],
    )?;
    db.exec(
        &format!(
            "GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}, {}, {}",
            quote_ident(&database),
            quote_ident(&groups[0]),
            quote_ident(&groups[1]),
            quote_ident(&groups[2])
        ),
        &[],
    )?;
    let fill = |s: &str| {
        s.replace("{a}", &groups[0])
            .replace("{r}", &groups[1])
            .replace("{l}", &groups[2])
    };
    let layer_tables: String = ANNOTATION_TABLES
        .split(';')
        .filter(|s| !s.trim().is_empty())
        .map(|s| format!("    EXECUTE $ddl${}$ddl$;\n", s.trim()))
        .collect();
    run_blocks(db, &fill(GUARD).replace("{layer_tables}", &layer_tables))?;
    run_blocks(db, &fill(SHARED))?;
    db.exec("SELECT public.thyme_secure_layer('public', '')", &[])?;
    let blind = db.rows(
        "SELECT DISTINCT layer, annotator FROM public.assignments WHERE layer <> 'main' ORDER BY 1, 2",
        &[],
    )?;
    for r in blind {
        db.exec(
            "SELECT public.thyme_make_layer(?1, ?2)",
            vals![r.text(0)?, r.opt_text(1)?.unwrap_or_default()],
        )?;
    }
    Ok(())
}

/// Make (or renew) `member`'s login role with a fresh random password, in the group of
/// `role`; returns the password. Only its SCRAM-SHA-256 verifier is sent to the server, so
/// the password itself is in no server log.
pub(super) fn issue_login(
    db: &mut dyn Db,
    member: &str,
    role: Role,
) -> Result<(String, String), StoreError> {
    let tag = team_tag(db)?;
    let login = login_role(&tag, member);
    let password = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let verifier = postgres_protocol::password::scram_sha_256(password.as_bytes());
    let exists = db.count(
        "SELECT count(*) FROM pg_roles WHERE rolname = ?1",
        vals![login.as_str()],
    )? > 0;
    let ident = quote_ident(&login);
    if exists {
        db.exec(
            &format!("ALTER ROLE {ident} LOGIN PASSWORD '{verifier}'"),
            &[],
        )?;
    } else {
        db.exec(
            &format!("CREATE ROLE {ident} LOGIN PASSWORD '{verifier}'"),
            &[],
        )?;
    }
    for r in Role::ALL {
        let group = quote_ident(&group_role(&tag, r));
        if r == role {
            db.exec(&format!("GRANT {group} TO {ident}"), &[])?;
        } else {
            db.exec(&format!("REVOKE {group} FROM {ident}"), &[])?;
        }
    }
    db.exec(
        "UPDATE public.members SET login_role = ?1, removed_at_ms = NULL WHERE name = ?2",
        vals![login.as_str(), member],
    )?;
    let layer = blind_layer(member);
    let has_layer = db.count(
        "SELECT count(*) FROM pg_namespace WHERE nspname = ?1",
        vals![layer.as_str()],
    )? > 0;
    if has_layer {
        db.exec(
            &format!("GRANT USAGE ON SCHEMA {} TO {ident}", quote_ident(&layer)),
            &[],
        )?;
    }
    Ok((login, password))
}

/// Take `member`'s login away: no more connections, sessions open now are ended, the role
/// leaves its group. Their rows stay (work they sent is the team's).
pub(super) fn revoke_login(db: &mut dyn Db, member: &str) -> Result<(), StoreError> {
    let tag = team_tag(db)?;
    let login = login_role(&tag, member);
    let exists = db.count(
        "SELECT count(*) FROM pg_roles WHERE rolname = ?1",
        vals![login.as_str()],
    )? > 0;
    if exists {
        let ident = quote_ident(&login);
        db.exec(&format!("ALTER ROLE {ident} NOLOGIN PASSWORD NULL"), &[])?;
        for r in Role::ALL {
            let group = quote_ident(&group_role(&tag, r));
            db.exec(&format!("REVOKE {group} FROM {ident}"), &[])?;
        }
        db.exec(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = ?1",
            vals![login.as_str()],
        )?;
    }
    Ok(())
}

/// Whether an error is the server's guard saying no (insufficient privilege, a row-level
/// security policy, the verdict trigger, a review function's check): SQLSTATE 42501.
pub(super) fn refused_by_server(e: &StoreError) -> bool {
    matches!(e, StoreError::Server(m) if m.ends_with("(42501)"))
}
