//! Tenant storage: D1 is the source of truth, with a short-lived in-isolate cache for lookups by host.
//!
//! # Why an in-isolate cache (and not KV)
//! Every request resolves its `Host` to a tenant, so the lookup must be cheap. A Worker isolate lives for
//! many requests; keeping resolved tenants in isolate memory for [`CACHE_TTL_MS`] costs no subrequest at
//! all, whereas KV would add a (cheaper than D1, but still remote) read on every cold key and is itself
//! eventually consistent for up to 60 s. Writes through the operator API clear the cache of the isolate
//! that made them at once; other isolates see a change within the TTL. Unknown hosts are cached too, so a
//! flood of requests for made-up hosts does not turn into a flood of D1 queries.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use shared::tenant::TenantConfig;
use worker::{D1Database, D1PreparedStatement, Date};

/// How long a resolved (or unknown) host stays cached in an isolate.
pub const CACHE_TTL_MS: u64 = 20_000;
/// Bound on cached hosts per isolate.
const CACHE_MAX_ENTRIES: usize = 10_000;

/// Host -> (expiry in ms since the epoch, the tenant or `None` for an unknown host).
type HostCache = HashMap<String, (u64, Option<Rc<TenantConfig>>)>;

thread_local! {
    static CACHE: RefCell<HostCache> = RefCell::new(HashMap::new());
}

/// Errors from tenant storage.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A hostname is already taken by another tenant.
    #[error("{field} {host:?} is already used by tenant {owner:?}")]
    HostTaken {
        /// `domain` or `webrtc_host`.
        field: &'static str,
        /// The contested hostname.
        host: String,
        /// The domain of the tenant that has it.
        owner: String,
    },
    /// A tenant with this domain already exists.
    #[error("a tenant with domain {0:?} already exists")]
    Exists(String),
    /// Two writes raced and the database refused the second.
    #[error("the tenant's hosts changed while saving; retry the request")]
    Conflict,
    /// The database failed or holds data this version cannot read.
    #[error("tenant storage failed: {0}")]
    Backend(String),
}

impl From<worker::Error> for StoreError {
    fn from(e: worker::Error) -> Self {
        let text = e.to_string();
        if text.contains("UNIQUE constraint failed") {
            Self::Conflict
        } else {
            Self::Backend(text)
        }
    }
}

/// Tenant storage over the `DB` binding.
pub struct TenantStore {
    db: D1Database,
}

#[derive(serde::Deserialize)]
struct ConfigRow {
    config: String,
}

#[derive(serde::Deserialize)]
struct HostRow {
    host: String,
    domain: String,
}

impl TenantStore {
    /// Storage over a D1 database.
    pub fn new(db: D1Database) -> Self {
        Self { db }
    }

    /// The tenant answering on `host` (a normalised hostname), through the isolate cache.
    pub async fn by_host(&self, host: &str) -> Result<Option<Rc<TenantConfig>>, StoreError> {
        let now = now_ms();
        let cached = CACHE.with(|c| {
            c.borrow()
                .get(host)
                .filter(|(exp, _)| *exp > now)
                .map(|(_, t)| t.clone())
        });
        if let Some(hit) = cached {
            return Ok(hit);
        }
        let row: Option<ConfigRow> = self
            .db
            .prepare(
                "SELECT t.config AS config FROM tenant_hosts h JOIN tenants t ON t.domain = h.domain \
                 WHERE h.host = ?1",
            )
            .bind(&[host.into()])?
            .first(None)
            .await?;
        let tenant = row.map(|r| decode(&r.config)).transpose()?.map(Rc::new);
        CACHE.with(|c| {
            let mut c = c.borrow_mut();
            if c.len() >= CACHE_MAX_ENTRIES {
                c.retain(|_, (exp, _)| *exp > now);
                if c.len() >= CACHE_MAX_ENTRIES {
                    c.clear();
                }
            }
            c.insert(host.to_owned(), (now + CACHE_TTL_MS, tenant.clone()));
        });
        Ok(tenant)
    }

    /// The tenant with this domain, read from D1.
    pub async fn get(&self, domain: &str) -> Result<Option<TenantConfig>, StoreError> {
        let row: Option<ConfigRow> = self
            .db
            .prepare("SELECT config FROM tenants WHERE domain = ?1")
            .bind(&[domain.into()])?
            .first(None)
            .await?;
        row.map(|r| decode(&r.config)).transpose()
    }

    /// Every tenant, ordered by domain.
    pub async fn list(&self) -> Result<Vec<TenantConfig>, StoreError> {
        let rows: Vec<ConfigRow> = self
            .db
            .prepare("SELECT config FROM tenants ORDER BY domain")
            .all()
            .await?
            .results()?;
        rows.iter().map(|r| decode(&r.config)).collect()
    }

    /// Stores a new tenant.
    pub async fn create(&self, tenant: &TenantConfig) -> Result<(), StoreError> {
        if self.get(tenant.domain.as_str()).await?.is_some() {
            return Err(StoreError::Exists(tenant.domain.to_string()));
        }
        self.check_hosts_free(tenant, None).await?;
        let mut batch = vec![self
            .db
            .prepare("INSERT INTO tenants (domain, config) VALUES (?1, ?2)")
            .bind(&[tenant.domain.as_str().into(), encode(tenant)?.into()])?];
        batch.extend(self.host_inserts(tenant)?);
        self.write(batch).await
    }

    /// Replaces the tenant stored under `domain` (which may be renamed by `tenant.domain`).
    pub async fn replace(&self, domain: &str, tenant: &TenantConfig) -> Result<(), StoreError> {
        if tenant.domain.as_str() != domain && self.get(tenant.domain.as_str()).await?.is_some() {
            return Err(StoreError::Exists(tenant.domain.to_string()));
        }
        self.check_hosts_free(tenant, Some(domain)).await?;
        let mut batch = vec![
            self.db
                .prepare("DELETE FROM tenant_hosts WHERE domain = ?1")
                .bind(&[domain.into()])?,
            self.db
                .prepare(
                    "UPDATE tenants SET domain = ?2, config = ?3, \
                     updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE domain = ?1",
                )
                .bind(&[
                    domain.into(),
                    tenant.domain.as_str().into(),
                    encode(tenant)?.into(),
                ])?,
        ];
        batch.extend(self.host_inserts(tenant)?);
        self.write(batch).await
    }

    /// Deletes a tenant; `false` when there was none.
    pub async fn delete(&self, domain: &str) -> Result<bool, StoreError> {
        let results = self
            .db
            .batch(vec![
                self.db
                    .prepare("DELETE FROM tenant_hosts WHERE domain = ?1")
                    .bind(&[domain.into()])?,
                self.db
                    .prepare("DELETE FROM tenants WHERE domain = ?1")
                    .bind(&[domain.into()])?,
            ])
            .await?;
        clear_cache();
        let changed = results
            .get(1)
            .and_then(|r| r.meta().ok().flatten())
            .and_then(|m| m.changes)
            .unwrap_or(0);
        Ok(changed > 0)
    }

    /// Refuses hosts held by a tenant other than `own_domain`.
    async fn check_hosts_free(
        &self,
        tenant: &TenantConfig,
        own_domain: Option<&str>,
    ) -> Result<(), StoreError> {
        let hosts = tenant.hosts();
        let rows: Vec<HostRow> = self
            .db
            .prepare("SELECT host, domain FROM tenant_hosts WHERE host IN (?1, ?2)")
            .bind(&[
                hosts[0].as_str().into(),
                hosts.last().map_or("", |h| h.as_str()).into(),
            ])?
            .all()
            .await?
            .results()?;
        match rows
            .into_iter()
            .find(|r| Some(r.domain.as_str()) != own_domain)
        {
            None => Ok(()),
            Some(taken) => Err(StoreError::HostTaken {
                field: if taken.host == tenant.domain.as_str() {
                    "domain"
                } else {
                    "webrtc_host"
                },
                host: taken.host,
                owner: taken.domain,
            }),
        }
    }

    fn host_inserts(&self, tenant: &TenantConfig) -> Result<Vec<D1PreparedStatement>, StoreError> {
        tenant
            .hosts()
            .into_iter()
            .map(|host| {
                Ok(self
                    .db
                    .prepare("INSERT INTO tenant_hosts (host, domain) VALUES (?1, ?2)")
                    .bind(&[host.as_str().into(), tenant.domain.as_str().into()])?)
            })
            .collect()
    }

    async fn write(&self, batch: Vec<D1PreparedStatement>) -> Result<(), StoreError> {
        let result = self.db.batch(batch).await;
        clear_cache();
        result?;
        Ok(())
    }
}

fn clear_cache() {
    CACHE.with(|c| c.borrow_mut().clear());
}

fn now_ms() -> u64 {
    Date::now().as_millis()
}

fn encode(tenant: &TenantConfig) -> Result<String, StoreError> {
    serde_json::to_string(tenant).map_err(|e| StoreError::Backend(e.to_string()))
}

fn decode(json: &str) -> Result<TenantConfig, StoreError> {
    TenantConfig::from_json(json.as_bytes())
        .map_err(|e| StoreError::Backend(format!("stored tenant is invalid: {e}")))
}
