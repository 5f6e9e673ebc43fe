//! Who is on the team: adding members with logins of their own, issuing and renewing their
//! credentials (also to every member of a database made before logins existed), taking
//! members off the team, the member list.

use super::*;

/// A member's credentials, made by the lead: their login role and the URL they join with
/// (it carries the password; shown once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    pub member: String,
    pub login: String,
    pub url: String,
}

impl TeamServer {
    /// Add a member (or change their role) and issue their credentials.
    pub fn add_member(&self, name: &str, role: Role, now: i64) -> Result<Invite, TeamError> {
        check_name(name)?;
        self.store.in_tx(|db| {
            db.exec(
                "INSERT INTO members (name, role, added_at_ms) VALUES (?1, ?2, ?3) ON CONFLICT (name) DO UPDATE SET role = EXCLUDED.role, removed_at_ms = NULL",
                vals![name, role.as_str(), now],
            )?;
            Ok(())
        })?;
        self.invite(name)
    }

    /// The members on the team now (those taken off it are left out).
    pub fn members(&self) -> Result<Vec<Member>, TeamError> {
        let rows = self.store.read(|db| {
            db.rows(
                "SELECT name, role FROM members WHERE removed_at_ms IS NULL ORDER BY name",
                &[],
            )
        })?;
        rows.iter()
            .map(|r| {
                let role = r.text(1)?;
                Ok(Member {
                    name: r.text(0)?,
                    role: Role::parse(&role)
                        .ok_or_else(|| TeamError::Corrupt(format!("unknown role '{role}'")))?,
                })
            })
            .collect()
    }

    /// Issue credentials to `member` (a new login role with a fresh password, or a new
    /// password for theirs). The lead's owner connection does this.
    pub fn invite(&self, member: &str) -> Result<Invite, TeamError> {
        let role = self.role_of(member)?;
        let (login, password) = self
            .store
            .in_tx(|db| security::issue_login(db, member, role))?;
        Ok(Invite {
            member: member.to_owned(),
            url: crate::team::credentials::for_login(&self.url, &login, &password),
            login,
        })
    }

    /// Issue credentials to every member who has none yet (after an upgrade), except the
    /// members named in `skip` (the lead on the owner's connection).
    pub fn invite_missing(&self, skip: &[&str]) -> Result<Vec<Invite>, TeamError> {
        let names: Vec<String> = self.store.read(|db| {
            db.rows(
                "SELECT name FROM members WHERE login_role IS NULL AND removed_at_ms IS NULL ORDER BY name",
                &[],
            )?
            .iter()
            .map(|r| r.text(0))
            .collect()
        })?;
        names
            .iter()
            .filter(|n| !skip.contains(&n.as_str()))
            .map(|n| self.invite(n))
            .collect()
    }

    /// Take a member off the team: their login stops working at once (open sessions are
    /// ended); what they sent stays, what they did not send stays in their local file.
    pub fn remove_member(&self, lead: &str, member: &str, now: i64) -> Result<(), TeamError> {
        self.require(lead, Role::Lead, "remove members")?;
        self.role_of(member)?;
        self.store.in_tx(|db| {
            security::revoke_login(db, member)?;
            db.exec(
                "UPDATE members SET removed_at_ms = ?1 WHERE name = ?2",
                vals![now, member],
            )?;
            Ok(())
        })?;
        Ok(())
    }
}
