//! Local SIP accounts in D1: digest HA1 hashes per tenant realm, never passwords.

use shared::auth::{ha1_hex, Algorithm};
use shared::tenant::{AccountInput, AccountView};
use worker::D1Database;

use crate::tenants::StoreError;

/// The digest hashes of one account, for the SIP edge.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub struct StoredAccount {
    /// SIP username.
    pub username: String,
    /// Display name.
    pub display_name: String,
    /// MD5(username:realm:password), hex.
    pub ha1_md5: String,
    /// SHA-256(username:realm:password), hex.
    pub ha1_sha256: String,
}

/// Account storage over the `DB` binding.
pub struct AccountStore {
    db: D1Database,
}

impl AccountStore {
    /// Storage over a D1 database.
    pub fn new(db: D1Database) -> Self {
        Self { db }
    }

    /// Creates or replaces `username` of tenant `domain` (whose realm is its domain); `true` if created.
    pub async fn put(
        &self,
        domain: &str,
        username: &str,
        input: &AccountInput,
    ) -> Result<bool, StoreError> {
        let existed = self.get(domain, username).await?.is_some();
        let md5 = ha1_hex(Algorithm::Md5, username, domain, &input.password);
        let sha256 = ha1_hex(Algorithm::Sha256, username, domain, &input.password);
        self.db
            .prepare(
                "INSERT INTO accounts (tenant_domain, username, display_name, ha1_md5, ha1_sha256) \
                 VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (tenant_domain, username) DO UPDATE SET display_name = ?3, ha1_md5 = ?4, \
                 ha1_sha256 = ?5, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
            )
            .bind(&[
                domain.into(),
                username.into(),
                input.display_name.as_str().into(),
                md5.into(),
                sha256.into(),
            ])?
            .run()
            .await?;
        Ok(!existed)
    }

    /// The hashes of one account, if it exists.
    pub async fn get(
        &self,
        domain: &str,
        username: &str,
    ) -> Result<Option<StoredAccount>, StoreError> {
        Ok(self
            .db
            .prepare(
                "SELECT username, display_name, ha1_md5, ha1_sha256 FROM accounts \
                 WHERE tenant_domain = ?1 AND username = ?2",
            )
            .bind(&[domain.into(), username.into()])?
            .first(None)
            .await?)
    }

    /// The tenant's accounts, without secrets, ordered by username.
    pub async fn list(&self, domain: &str) -> Result<Vec<AccountView>, StoreError> {
        Ok(self
            .db
            .prepare(
                "SELECT username, display_name, created_at FROM accounts WHERE tenant_domain = ?1 \
                 ORDER BY username",
            )
            .bind(&[domain.into()])?
            .all()
            .await?
            .results()?)
    }

    /// Deletes an account; `false` when there was none.
    pub async fn delete(&self, domain: &str, username: &str) -> Result<bool, StoreError> {
        let result = self
            .db
            .prepare("DELETE FROM accounts WHERE tenant_domain = ?1 AND username = ?2")
            .bind(&[domain.into(), username.into()])?
            .run()
            .await?;
        Ok(result
            .meta()
            .ok()
            .flatten()
            .and_then(|m| m.changes)
            .unwrap_or(0)
            > 0)
    }
}
