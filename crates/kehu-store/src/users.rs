//! Users, roles, sessions, API tokens and login attempts. Secrets are never
//! stored: sessions and tokens by SHA-256 of the token, passwords as Argon2id
//! hashes computed by the caller.

use crate::customers::map_unique;
use crate::db::{check_version, decode_n, Exec, RowGet};
use crate::error::StoreError;
use crate::listing::{run_list, ListSpec, ScopeFilter};
use crate::model::{ApiToken, AuthUser, Page, Role, Session, User};
use crate::{args, Store};
use chrono::{DateTime, Utc};
use kehu_core::privacy::FieldRights;
use kehu_core::query::ListQuery;
use kehu_core::role::Grants;
use sha2::{Digest, Sha256};

const USER_COLUMNS: &str = "users.id, users.username, users.display_name, users.role, users.team, users.active, users.must_change_password, \
users.version, users.created_at, users.updated_at";

fn decode_user(r: &dyn RowGet) -> Result<User, sqlx::Error> {
    Ok(User {
        id: r.int("id")?,
        username: r.text("username")?,
        display_name: r.text("display_name")?,
        role: r.text("role")?,
        team: r.opt_text("team")?,
        active: r.boolean("active")?,
        must_change_password: r.boolean("must_change_password")?,
        version: r.int("version")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
    })
}

const TOKEN_COLUMNS: &str = "id, name, created_at, last_used_at, revoked_at";

fn decode_token(r: &dyn RowGet) -> Result<ApiToken, sqlx::Error> {
    Ok(ApiToken {
        id: r.int("id")?,
        name: r.text("name")?,
        created_at: r.time("created_at")?,
        last_used_at: r.opt_time("last_used_at")?,
        revoked_at: r.opt_time("revoked_at")?,
    })
}

fn decode_grants(r: &dyn RowGet) -> Result<Grants, sqlx::Error> {
    serde_json::from_value(r.json("grants")?).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

fn decode_field_rights(r: &dyn RowGet) -> Result<FieldRights, sqlx::Error> {
    serde_json::from_value(r.json("field_rights")?).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

fn decode_auth_user(r: &dyn RowGet) -> Result<AuthUser, sqlx::Error> {
    Ok(AuthUser {
        user: decode_user(r)?,
        grants: decode_grants(r)?,
        field_rights: decode_field_rights(r)?,
        password_hash: r.text("password_hash")?,
    })
}

fn decode_role(r: &dyn RowGet) -> Result<Role, sqlx::Error> {
    Ok(Role {
        key: r.text("key")?,
        name_zh: r.text("name_zh")?,
        name_en: r.text("name_en")?,
        grants: decode_grants(r)?,
        field_rights: decode_field_rights(r)?,
        builtin: r.boolean("builtin")?,
    })
}

fn decode_session(r: &dyn RowGet) -> Result<Session, sqlx::Error> {
    Ok(Session {
        user_id: r.int("user_id")?,
        csrf_token: r.text("csrf_token")?,
        created_at: r.time("created_at")?,
        last_seen_at: r.time("last_seen_at")?,
        expires_at: r.time("expires_at")?,
    })
}

/// SHA-256 hex of a secret token: what the database keeps instead of it.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new user as the store needs it (validated by the caller).
pub struct NewUser<'a> {
    pub username: &'a str,
    pub display_name: &'a str,
    pub password_hash: &'a str,
    pub role: &'a str,
    pub team: Option<&'a str>,
    pub must_change_password: bool,
}

/// Editable fields of a user.
pub struct UserChange<'a> {
    pub display_name: &'a str,
    pub role: &'a str,
    pub team: Option<&'a str>,
    pub active: bool,
}

/// What authentication reads of a user: the user, its password hash and its role's grants.
const AUTH_COLUMNS: &str = "users.id, users.username, users.display_name, users.role, users.team, users.active, users.must_change_password, \
users.version, users.created_at, users.updated_at, users.password_hash, roles.grants, roles.field_rights";
const AUTH_FROM: &str = "FROM users JOIN roles ON roles.key = users.role";
impl Store {
    pub async fn roles(&self) -> Result<Vec<Role>, StoreError> {
        self.db
            .clone()
            .fetch_all(
                "SELECT key, name_zh, name_en, grants, field_rights, builtin FROM roles ORDER BY key",
                vec![],
                decode_role,
            )
            .await
    }

    /// Replaces a role's rights over personal fields; returns them before.
    pub async fn set_field_rights(
        &self,
        role: &str,
        rights: &FieldRights,
    ) -> Result<FieldRights, StoreError> {
        let before = self.replace_role_json(role, "field_rights", rights).await?;
        serde_json::from_value(before).map_err(|e| StoreError::Config(e.to_string()))
    }

    /// Replaces a role's permissions and scopes; returns them before.
    pub async fn set_grants(&self, role: &str, grants: &Grants) -> Result<Grants, StoreError> {
        let before = self.replace_role_json(role, "grants", grants).await?;
        serde_json::from_value(before).map_err(|e| StoreError::Config(e.to_string()))
    }

    /// One JSON column of a role (`grants`, `field_rights`: names from this
    /// file only) replaced; its value before.
    async fn replace_role_json(
        &self,
        role: &str,
        column: &'static str,
        value: &impl serde::Serialize,
    ) -> Result<serde_json::Value, StoreError> {
        let value = serde_json::to_value(value).map_err(|e| StoreError::Config(e.to_string()))?;
        let mut tx = self.db.begin().await?;
        let before = tx
            .fetch_optional(
                &format!("SELECT {column} FROM roles WHERE key = $1"),
                args![role],
                |r: &dyn RowGet| r.json(column),
            )
            .await?
            .ok_or(StoreError::NotFound)?;
        tx.execute(
            &format!("UPDATE roles SET {column} = $1 WHERE key = $2"),
            args![value, role],
        )
        .await?;
        tx.commit().await?;
        Ok(before)
    }

    /// A new role (not built in).
    pub async fn insert_role(&self, r: &Role) -> Result<(), StoreError> {
        let grants =
            serde_json::to_value(&r.grants).map_err(|e| StoreError::Config(e.to_string()))?;
        let fields =
            serde_json::to_value(&r.field_rights).map_err(|e| StoreError::Config(e.to_string()))?;
        self.db
            .clone()
            .execute(
                "INSERT INTO roles (key, name_zh, name_en, grants, field_rights, builtin) VALUES ($1, $2, $3, $4, $5, $6)",
                args![r.key.clone(), r.name_zh.clone(), r.name_en.clone(), grants, fields, false],
            )
            .await
            .map_err(|e| map_unique(e, &["key"]))?;
        Ok(())
    }

    /// Deletes a role of one's own making that no user holds.
    pub async fn delete_role(&self, key: &str) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        let users = tx
            .fetch_one(
                "SELECT COUNT(*) AS n FROM users WHERE role = $1",
                args![key],
                decode_n,
            )
            .await?;
        let builtin = tx
            .fetch_optional(
                "SELECT builtin FROM roles WHERE key = $1",
                args![key],
                |r: &dyn RowGet| r.boolean("builtin"),
            )
            .await?
            .ok_or(StoreError::NotFound)?;
        if builtin || users > 0 {
            return Err(StoreError::Invalid(kehu_core::ValidationErrors::single(
                "key",
                kehu_core::Reason::Rule {
                    code: "role_in_use",
                    zh: if builtin {
                        "预置角色不能删除".into()
                    } else {
                        format!("还有 {users} 个用户属于该角色")
                    },
                    en: if builtin {
                        "a preset role cannot be deleted".into()
                    } else {
                        format!("{users} users still hold this role")
                    },
                },
            )));
        }
        tx.execute("DELETE FROM roles WHERE key = $1", args![key])
            .await?;
        tx.commit().await
    }

    pub async fn insert_user(&self, u: &NewUser<'_>) -> Result<User, StoreError> {
        let now = Utc::now();
        let sql = format!(
            "INSERT INTO users (username, display_name, password_hash, role, team, active, must_change_password, created_at, updated_at, password_changed_at) \
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10) RETURNING {USER_COLUMNS}"
        );
        let a = args![
            u.username,
            u.display_name,
            u.password_hash,
            u.role,
            u.team.map(str::to_string),
            true,
            u.must_change_password,
            now,
            now,
            now
        ];
        self.db
            .clone()
            .fetch_one(&sql, a, decode_user)
            .await
            .map_err(|e| map_unique(e, &["username"]))
    }

    pub async fn user(&self, id: i64) -> Result<User, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        self.db
            .clone()
            .fetch_one(&sql, args![id], decode_user)
            .await
    }

    /// Every user's id, display name and team (for owner names and pickers).
    /// Every user's display name by id.
    pub async fn user_names(&self) -> Result<std::collections::HashMap<i64, String>, StoreError> {
        Ok(self
            .user_directory()
            .await?
            .into_iter()
            .map(|(id, name, _)| (id, name))
            .collect())
    }

    pub async fn user_directory(&self) -> Result<Vec<(i64, String, Option<String>)>, StoreError> {
        self.db
            .clone()
            .fetch_all(
                "SELECT id, display_name, team FROM users ORDER BY display_name",
                vec![],
                |r: &dyn RowGet| Ok((r.int("id")?, r.text("display_name")?, r.opt_text("team")?)),
            )
            .await
    }

    pub async fn auth_user_by_name(&self, username: &str) -> Result<AuthUser, StoreError> {
        let sql = format!("SELECT {AUTH_COLUMNS} {AUTH_FROM} WHERE users.username = $1");
        self.db
            .clone()
            .fetch_one(&sql, args![username], decode_auth_user)
            .await
    }

    pub async fn auth_user(&self, id: i64) -> Result<AuthUser, StoreError> {
        let sql = format!("SELECT {AUTH_COLUMNS} {AUTH_FROM} WHERE users.id = $1");
        self.db
            .clone()
            .fetch_one(&sql, args![id], decode_auth_user)
            .await
    }

    pub async fn user_count(&self) -> Result<i64, StoreError> {
        self.db
            .clone()
            .fetch_one("SELECT COUNT(*) AS n FROM users", vec![], decode_n)
            .await
    }

    pub async fn list_users(&self, q: &ListQuery) -> Result<Page<User>, StoreError> {
        let spec = ListSpec {
            table: "users",
            columns: USER_COLUMNS,
            search: &["username", "display_name"],
            scope: &ScopeFilter::All,
            scope_via_customer: false,
            only: None,
        };
        run_list(&mut self.db.clone(), &spec, q, false, decode_user).await
    }

    pub async fn update_user(
        &self,
        id: i64,
        expected_version: i64,
        c: &UserChange<'_>,
    ) -> Result<User, StoreError> {
        let mut tx = self.db.begin().await?;
        check_version(&mut tx, "users", id, expected_version).await?;
        let sql = format!("UPDATE users SET display_name=$1, role=$2, team=$3, active=$4, updated_at=$5, version = version + 1 WHERE id=$6 RETURNING {USER_COLUMNS}");
        let u = tx
            .fetch_one(
                &sql,
                args![
                    c.display_name,
                    c.role,
                    c.team.map(str::to_string),
                    c.active,
                    Utc::now(),
                    id
                ],
                decode_user,
            )
            .await?;
        if !c.active {
            // A disabled account loses every session and token at once.
            tx.execute("DELETE FROM sessions WHERE user_id = $1", args![id])
                .await?;
            tx.execute(
                "UPDATE api_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
                args![Utc::now(), id],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(u)
    }

    /// Sets a new password hash and ends every session of the user, keeping
    /// the one given (the session that made the change), if any.
    pub async fn set_password(
        &self,
        id: i64,
        password_hash: &str,
        must_change: bool,
        keep_session: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        let now = Utc::now();
        let n = tx
            .execute(
                "UPDATE users SET password_hash=$1, must_change_password=$2, password_changed_at=$3, updated_at=$3, version = version + 1 WHERE id=$4",
                args![password_hash, must_change, now, id],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        let keep = keep_session.map(token_hash).unwrap_or_default();
        tx.execute(
            "DELETE FROM sessions WHERE user_id = $1 AND token_hash <> $2",
            args![id, keep],
        )
        .await?;
        tx.commit().await
    }

    pub async fn delete_user(&self, id: i64, expected_version: i64) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        check_version(&mut tx, "users", id, expected_version).await?;
        tx.execute("DELETE FROM users WHERE id = $1", args![id])
            .await?;
        tx.commit().await
    }

    // ---- sessions ----

    pub async fn create_session(
        &self,
        token: &str,
        user_id: i64,
        csrf_token: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let now = Utc::now();
        self.db
            .clone()
            .execute(
                "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, last_seen_at, expires_at) VALUES ($1,$2,$3,$4,$5,$6)",
                args![token_hash(token), user_id, csrf_token, now, now, expires_at],
            )
            .await?;
        Ok(())
    }

    pub async fn session(&self, token: &str) -> Result<Session, StoreError> {
        self.db
            .clone()
            .fetch_one(
                "SELECT user_id, csrf_token, created_at, last_seen_at, expires_at FROM sessions WHERE token_hash = $1",
                args![token_hash(token)],
                decode_session,
            )
            .await
    }

    pub async fn touch_session(&self, token: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.db
            .clone()
            .execute(
                "UPDATE sessions SET last_seen_at = $1 WHERE token_hash = $2",
                args![now, token_hash(token)],
            )
            .await?;
        Ok(())
    }

    pub async fn delete_session(&self, token: &str) -> Result<(), StoreError> {
        self.db
            .clone()
            .execute(
                "DELETE FROM sessions WHERE token_hash = $1",
                args![token_hash(token)],
            )
            .await?;
        Ok(())
    }

    pub async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.db
            .clone()
            .execute("DELETE FROM sessions WHERE expires_at < $1", args![now])
            .await
    }

    // ---- API tokens ----

    /// Stores `token` (its hash) for `user_id`: the token as it will be listed.
    pub async fn create_api_token(
        &self,
        user_id: i64,
        name: &str,
        token: &str,
    ) -> Result<ApiToken, StoreError> {
        self.db
            .clone()
            .fetch_one(
                &format!(
                    "INSERT INTO api_tokens (user_id, name, token_hash, created_at) VALUES ($1,$2,$3,$4) \
                     RETURNING {TOKEN_COLUMNS}"
                ),
                args![user_id, name, token_hash(token), Utc::now()],
                decode_token,
            )
            .await
    }

    /// A user's API tokens, newest first (never the token: only its hash is kept).
    pub async fn api_tokens(&self, user_id: i64) -> Result<Vec<ApiToken>, StoreError> {
        self.db
            .clone()
            .fetch_all(
                &format!(
                    "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE user_id = $1 ORDER BY id DESC"
                ),
                args![user_id],
                decode_token,
            )
            .await
    }

    /// Revokes one of `user_id`'s tokens (NotFound when it is not theirs);
    /// revoking a revoked token changes nothing.
    pub async fn revoke_api_token(
        &self,
        user_id: i64,
        token_id: i64,
    ) -> Result<ApiToken, StoreError> {
        let mut tx = self.db.begin().await?;
        tx.execute(
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL",
            args![Utc::now(), token_id, user_id],
        )
        .await?;
        let t = tx
            .fetch_optional(
                &format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE id = $1 AND user_id = $2"),
                args![token_id, user_id],
                decode_token,
            )
            .await?
            .ok_or(StoreError::NotFound)?;
        tx.commit().await?;
        Ok(t)
    }

    /// The user behind a live bearer token, in one query (this runs on every
    /// API request); records the token's use at most once a minute, so that
    /// reads do not become writes on every request.
    /// Also the token's id.
    pub async fn api_token_user(&self, token: &str) -> Result<(AuthUser, i64), StoreError> {
        let mut db = self.db.clone();
        let h = token_hash(token);
        let sql = format!(
            "SELECT {AUTH_COLUMNS}, api_tokens.last_used_at, api_tokens.id AS token_id {AUTH_FROM} \
             JOIN api_tokens ON api_tokens.user_id = users.id \
             WHERE api_tokens.token_hash = $1 AND api_tokens.revoked_at IS NULL"
        );
        let (user, last_used, token_id) = db
            .fetch_one(&sql, args![h.clone()], |r: &dyn RowGet| {
                Ok((
                    decode_auth_user(r)?,
                    r.opt_time("last_used_at")?,
                    r.int("token_id")?,
                ))
            })
            .await?;
        let now = Utc::now();
        if last_used.is_none_or(|t| now - t > chrono::Duration::minutes(1)) {
            db.execute(
                "UPDATE api_tokens SET last_used_at = $1 WHERE token_hash = $2",
                args![now, h],
            )
            .await?;
        }
        Ok((user, token_id))
    }

    // ---- login rate limiting (in the database, so every server sees it) ----

    pub async fn record_login_failure(
        &self,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.db
            .clone()
            .execute(
                "INSERT INTO login_attempts (key, attempted_at) VALUES ($1, $2)",
                args![key, now],
            )
            .await?;
        Ok(())
    }

    pub async fn login_failures_since(
        &self,
        key: &str,
        since: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        self.db
            .clone()
            .fetch_one(
                "SELECT COUNT(*) AS n FROM login_attempts WHERE key = $1 AND attempted_at > $2",
                args![key, since],
                decode_n,
            )
            .await
    }

    pub async fn clear_login_failures(&self, key: &str) -> Result<(), StoreError> {
        self.db
            .clone()
            .execute("DELETE FROM login_attempts WHERE key = $1", args![key])
            .await?;
        Ok(())
    }
}
