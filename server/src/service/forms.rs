//! Questionnaires an office publishes (issue 17): form versions kept once and never changed,
//! checked at publish against every earlier version of the same form (`form::check_evolution`),
//! and which version new visits use, per kabupaten or everywhere.
//!
//! The built-in DTSEN form (`dtsen-ground-check@1`) is on every server without being stored: it
//! is listed as published by `built-in`, and it is the default wherever nobody set one.
//!
//! Parsed definitions are kept in memory by key ([`FormCache`]). A published version never
//! changes, so the cache is never stale, on one server or several sharing a database.

use super::Service;
use crate::storage::{FormDefaultRow, FormRow, ReadTx, StorageError, Transactions};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use sync_core::form::{EvolutionProblem, FormDefinition, FormSet, check_evolution};
use sync_core::ids::RegencyCode;
use sync_core::protocol::{FormDefaultView, FormVersionView, FormsView, PublishedForm};
use sync_core::sync::FormsDelivery;
use time::OffsetDateTime;

/// Who "published" the version compiled into Pilar, in listings.
pub const BUILT_IN: &str = "built-in";

/// Why a publish or a default was refused.
#[derive(Debug, thiserror::Error)]
pub enum FormsError {
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Another definition is already published under this key.
    #[error(
        "form {key} is already published with a different definition, and a published version never changes; \
         raise \"version\" and publish again"
    )]
    VersionTaken {
        /// The key.
        key: String,
    },
    /// A newer version of the form exists: a new version must come after it.
    #[error("form {key} is not newer than the published {newest}; raise \"version\" above it")]
    NotNewest {
        /// The refused key.
        key: String,
        /// The newest published version's key.
        newest: String,
    },
    /// The definition would make households recorded under an earlier version unreadable.
    #[error(
        "form {key} would make households recorded under earlier versions unreadable, so nothing was published:\n{}",
        problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n")
    )]
    Incompatible {
        /// The refused key.
        key: String,
        /// Every problem, each naming its field and rule.
        problems: Vec<EvolutionProblem>,
    },
    /// No such version is published.
    #[error("no form {0} is published on this server; `pilar form versions` lists them")]
    UnknownForm(String),
    /// The kabupaten code is not in the region table.
    #[error("{0}")]
    BadKabupaten(String),
}

/// Parsed definitions by key; published versions never change, so entries never go stale.
#[derive(Default)]
pub struct FormCache {
    parsed: Mutex<HashMap<String, Arc<FormDefinition>>>,
}

impl FormCache {
    /// The definition of `key`: built-in, cached, or read from the database and parsed once.
    pub fn get(&self, tx: &mut dyn ReadTx, key: &str) -> Result<Option<Arc<FormDefinition>>, StorageError> {
        if let Some(form) = self.parsed.lock().map_err(|_| poisoned())?.get(key) {
            return Ok(Some(Arc::clone(form)));
        }
        let form = if key == built_in().key() {
            built_in().clone()
        } else {
            let Some(text) = tx.form_definition(key)? else {
                return Ok(None);
            };
            FormDefinition::from_json(&text)
                .map_err(|e| StorageError::Corrupt(format!("published form {key} no longer reads: {e}")))?
        };
        let form = Arc::new(form);
        self.parsed.lock().map_err(|_| poisoned())?.insert(key.to_string(), Arc::clone(&form));
        Ok(Some(form))
    }
}

impl FormCache {
    /// Every published version (the built-in one included), parsed: what admission checks
    /// households with. Reads the list of keys; definitions come from the cache.
    pub fn set(&self, tx: &mut dyn ReadTx) -> Result<FormSet, StorageError> {
        let mut set = FormSet::built_in();
        for row in tx.forms()? {
            if let Some(form) = self.get(tx, &row.key)? {
                set.insert(form);
            }
        }
        Ok(set)
    }
}

fn poisoned() -> StorageError {
    StorageError::Corrupt("the form cache was poisoned by a panic".into())
}

fn built_in() -> &'static FormDefinition {
    FormDefinition::default_dtsen()
}

/// Every version: the built-in one first, then the stored ones by form id and version.
fn all_versions(tx: &mut dyn ReadTx) -> Result<Vec<FormRow>, StorageError> {
    let form = built_in();
    let mut rows = vec![FormRow {
        key: form.key(),
        form_id: form.id.clone(),
        version: form.version,
        title: form.title.clone(),
        published_by: BUILT_IN.into(),
        published_at: OffsetDateTime::UNIX_EPOCH,
    }];
    rows.extend(tx.forms()?);
    Ok(rows)
}

/// A short digest of every published key and every default: a device whose stored token differs
/// fetches forms (`POST /v1/sync/forms`); equal tokens mean nothing changed.
pub fn catalog_token(set: &FormSet, defaults: &[FormDefaultRow]) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for key in set.keys() {
        hash.update(key.as_bytes());
        hash.update(b"\n");
    }
    for d in defaults {
        hash.update(format!("{}={}\n", d.area, d.form_key).as_bytes());
    }
    hex::encode(&hash.finalize()[..8])
}

/// The key new visits use in `village` (dotted Kemendagri code): its kabupaten's default, else the
/// global one, else the built-in form.
pub fn default_for_village(defaults: &[FormDefaultRow], village: &str) -> String {
    let kabupaten = village.get(..5).unwrap_or("");
    defaults
        .iter()
        .find(|d| !d.area.is_empty() && d.area == kabupaten)
        .or_else(|| defaults.iter().find(|d| d.area.is_empty()))
        .map(|d| d.form_key.clone())
        .unwrap_or_else(|| built_in().key())
}

impl Service {
    /// The parsed definition of a published version (the built-in one included).
    pub fn form(&self, tx: &mut dyn ReadTx, key: &str) -> Result<Option<Arc<FormDefinition>>, StorageError> {
        self.forms.get(tx, key)
    }

    /// Publish `form` as `by`. A retry of the same definition answers `created: false`; another
    /// definition under a published key, a version not above the newest, or one that breaks a
    /// rule of `form::evolution` against any earlier version is refused and nothing is stored.
    pub fn publish_form(
        &self,
        form: &FormDefinition,
        by: &str,
        now: OffsetDateTime,
    ) -> Result<PublishedForm, FormsError> {
        let key = form.key();
        let definition = serde_json::to_string(form)
            .map_err(|e| StorageError::Corrupt(format!("form {key} does not serialise: {e}")))?;
        let outcome = self.db.write(|tx| {
            if let Some(existing) = self.forms.get(tx, &key)? {
                return Ok(if existing.as_ref() == form {
                    Ok(PublishedForm { key: key.clone(), created: false })
                } else {
                    Err(FormsError::VersionTaken { key: key.clone() })
                });
            }
            let earlier: Vec<FormRow> = all_versions(tx)?.into_iter().filter(|r| r.form_id == form.id).collect();
            if let Some(newest) = earlier.iter().max_by_key(|r| r.version)
                && newest.version >= form.version
            {
                return Ok(Err(FormsError::NotNewest { key: key.clone(), newest: newest.key.clone() }));
            }
            let mut problems: Vec<EvolutionProblem> = Vec::new();
            for row in &earlier {
                let Some(old) = self.forms.get(tx, &row.key)? else { continue };
                for problem in check_evolution(&old, form) {
                    if !problems.contains(&problem) {
                        problems.push(problem);
                    }
                }
            }
            if !problems.is_empty() {
                return Ok(Err(FormsError::Incompatible { key: key.clone(), problems }));
            }
            let row = FormRow {
                key: key.clone(),
                form_id: form.id.clone(),
                version: form.version,
                title: form.title.clone(),
                published_by: by.to_string(),
                published_at: now,
            };
            tx.insert_form(&row, &definition)?;
            Ok(Ok(PublishedForm { key: key.clone(), created: true }))
        })??;
        if outcome.created {
            tracing::info!(form = %outcome.key, by, "form version published");
        }
        Ok(outcome)
    }

    /// Make `key` the version new visits use in `kabupaten` (a code, dotted or not), or everywhere
    /// without a kabupaten default when `None`.
    pub fn set_form_default(
        &self,
        kabupaten: Option<&str>,
        key: &str,
        by: &str,
        now: OffsetDateTime,
    ) -> Result<FormDefaultView, FormsError> {
        let (area, name) = match kabupaten {
            None => (String::new(), String::new()),
            Some(text) => {
                let code = RegencyCode::parse(text).map_err(|e| {
                    FormsError::BadKabupaten(format!(
                        "kabupaten {text:?} is not usable: {e}; give a code such as 73.14"
                    ))
                })?;
                let name = code.name().unwrap_or_default().to_string();
                (code.to_string(), name)
            }
        };
        let row = FormDefaultRow { area, form_key: key.to_string(), set_by: by.to_string(), set_at: now };
        self.db.write(|tx| {
            if self.forms.get(tx, key)?.is_none() {
                return Ok(Err(FormsError::UnknownForm(key.to_string())));
            }
            tx.put_form_default(&row)?;
            Ok(Ok(()))
        })??;
        tracing::info!(form = key, area = %row.area, by, "form default set");
        Ok(FormDefaultView {
            kabupaten: row.area,
            name,
            form: row.form_key,
            set_by: row.set_by,
            set_at: crate::clock::rfc3339(now),
        })
    }

    /// Every published version and every default (the global one first, built-in when unset).
    pub fn forms_view(&self) -> Result<FormsView, StorageError> {
        self.db.read(|tx| {
            let versions = all_versions(tx)?
                .into_iter()
                .map(|r| FormVersionView {
                    published_at: if r.published_by == BUILT_IN && r.key == built_in().key() {
                        String::new()
                    } else {
                        crate::clock::rfc3339(r.published_at)
                    },
                    key: r.key,
                    title: r.title,
                    published_by: r.published_by,
                })
                .collect();
            let stored = tx.form_defaults()?;
            let mut defaults = Vec::new();
            if !stored.iter().any(|d| d.area.is_empty()) {
                defaults.push(FormDefaultView {
                    kabupaten: String::new(),
                    name: String::new(),
                    form: built_in().key(),
                    set_by: BUILT_IN.into(),
                    set_at: String::new(),
                });
            }
            for d in stored {
                let name =
                    RegencyCode::parse(&d.area).ok().and_then(|c| c.name().map(str::to_string)).unwrap_or_default();
                defaults.push(FormDefaultView {
                    kabupaten: d.area,
                    name,
                    form: d.form_key,
                    set_by: d.set_by,
                    set_at: crate::clock::rfc3339(d.set_at),
                });
            }
            Ok(FormsView { versions, defaults })
        })
    }

    /// What `POST /v1/sync/forms` answers a device working in `villages` that holds `have`: every
    /// published version it lacks (a household it receives may carry any of them), the defaults
    /// for its kabupaten and the global one, and the catalog token.
    pub fn forms_delivery(&self, villages: &[String], have: &[String]) -> Result<FormsDelivery, StorageError> {
        self.db.read(|tx| {
            let set = self.forms.set(tx)?;
            let defaults = tx.form_defaults()?;
            let token = catalog_token(&set, &defaults);
            let kabupaten: Vec<&str> = villages.iter().filter_map(|v| v.get(..5)).collect();
            let defaults = defaults
                .into_iter()
                .filter(|d| d.area.is_empty() || kabupaten.contains(&d.area.as_str()))
                .map(|d| (d.area, d.form_key))
                .collect();
            let forms = set
                .iter()
                .filter(|f| !have.contains(&f.key()))
                .map(|f| serde_json::to_string(f.as_ref()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| StorageError::Corrupt(format!("a form does not serialise: {e}")))?;
            Ok(FormsDelivery { token, defaults, forms })
        })
    }

    /// A published definition by key, as JSON (the built-in one included).
    pub fn form_definition(&self, key: &str) -> Result<Option<Arc<FormDefinition>>, StorageError> {
        self.db.read(|tx| self.forms.get(tx, key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::sqlite::SqliteDatabase;
    use sync_core::form::{FieldKind, Required};

    fn service() -> (tempfile::TempDir, Service) {
        let dir = tempfile::TempDir::new().expect("temp dir");
        let db = SqliteDatabase::open(&dir.path().join("server.db")).expect("open");
        (dir, Service::new(std::sync::Arc::new(db)))
    }

    fn noon() -> OffsetDateTime {
        time::macros::datetime!(2026-12-02 12:00 UTC)
    }

    /// Version 2 of the default form: a new question, a new choice, a retired question.
    fn version_2() -> FormDefinition {
        let mut form = built_in().clone();
        form.version = 2;
        let mut question = form.household[0].clone();
        question.name = "bantuan_daerah".into();
        question.label = "Penerima bantuan daerah".into();
        question.kind = FieldKind::Boolean;
        question.required = Required::No;
        question.help = None;
        form.household.push(question);
        let roof = form.household.iter_mut().find(|f| f.name == "roof_material").expect("roof_material");
        if let FieldKind::SelectOne { choices } = &mut roof.kind {
            choices.push(sync_core::form::Choice { code: 77, label: "Bahan uji baru".into() });
        }
        let retired = form.household.iter_mut().find(|f| f.name == "bps_village_code").expect("bps_village_code");
        retired.retired = true;
        form
    }

    #[test]
    fn a_fresh_server_lists_the_built_in_form_as_version_1_and_default() {
        let (_dir, service) = service();
        let view = service.forms_view().expect("view");
        assert_eq!(view.versions.len(), 1);
        assert_eq!(view.versions[0].key, "dtsen-ground-check@1");
        assert_eq!(view.versions[0].published_by, BUILT_IN);
        assert_eq!(view.defaults.len(), 1);
        assert_eq!((view.defaults[0].kabupaten.as_str(), view.defaults[0].form.as_str()), ("", "dtsen-ground-check@1"));
    }

    #[test]
    fn a_compatible_version_is_published_once_and_a_retry_changes_nothing() {
        let (_dir, service) = service();
        let v2 = version_2();
        let first = service.publish_form(&v2, "admin.uji", noon()).expect("publish");
        assert_eq!(first, PublishedForm { key: "dtsen-ground-check@2".into(), created: true });
        let again = service.publish_form(&v2, "admin.uji", noon()).expect("retry");
        assert!(!again.created);
        let mut other = v2.clone();
        other.title = "Lain".into();
        let taken = service.publish_form(&other, "admin.uji", noon()).expect_err("another definition");
        assert!(matches!(taken, FormsError::VersionTaken { .. }), "{taken}");
        let stored = service.form_definition("dtsen-ground-check@2").expect("read").expect("stored");
        assert_eq!(stored.as_ref(), &v2);
        let keys: Vec<String> = service.forms_view().expect("view").versions.into_iter().map(|v| v.key).collect();
        assert_eq!(keys, ["dtsen-ground-check@1", "dtsen-ground-check@2"]);

        let older = FormDefinition { version: 2, ..built_in().clone() };
        let mut v3 = v2.clone();
        v3.version = 3;
        service.publish_form(&v3, "admin.uji", noon()).expect("v3");
        let stale = service.publish_form(&FormDefinition { title: "x".into(), ..older }, "admin.uji", noon());
        assert!(matches!(stale, Err(FormsError::VersionTaken { .. })), "{stale:?}");
        let mut v2b = v2.clone();
        v2b.id = "other-form".into();
        v2b.version = 1;
        assert!(service.publish_form(&v2b, "admin.uji", noon()).expect("another form id").created);
        let mut v5 = v3.clone();
        v5.version = 5;
        service.publish_form(&v5, "admin.uji", noon()).expect("v5");
        let mut v4 = v3.clone();
        v4.version = 4;
        let late = service.publish_form(&v4, "admin.uji", noon()).expect_err("below the newest");
        assert!(
            matches!(late, FormsError::NotNewest { .. }) && late.to_string().contains("dtsen-ground-check@5"),
            "{late}"
        );
    }

    #[test]
    fn each_incompatible_change_is_refused_with_its_field_and_rule_and_nothing_is_published() {
        let (_dir, service) = service();
        let mut cases: Vec<(FormDefinition, &str, &str)> = Vec::new();
        let mut typed = version_2();
        typed.household.iter_mut().find(|f| f.name == "rt").expect("rt").kind =
            FieldKind::Integer { min: None, max: None, unknown_codes: vec![] };
        cases.push((typed, "rt", "type_changed"));
        let mut reused = version_2();
        if let FieldKind::SelectOne { choices } =
            &mut reused.household.iter_mut().find(|f| f.name == "roof_material").expect("roof").kind
        {
            choices[0].label = "Sesuatu yang lain sama sekali".into();
        }
        cases.push((reused, "roof_material", "choice_reused"));
        let mut required = version_2();
        required.household.iter_mut().find(|f| f.name == "bantuan_daerah").expect("new").required = Required::Always;
        cases.push((required, "bantuan_daerah", "required_added"));
        let mut removed = version_2();
        removed.household.retain(|f| f.name != "address");
        cases.push((removed, "address", "field_removed"));
        for (form, field, rule) in cases {
            let refused = service.publish_form(&form, "admin.uji", noon()).expect_err(rule);
            let text = refused.to_string();
            assert!(matches!(refused, FormsError::Incompatible { .. }), "{text}");
            assert!(text.contains(&format!("`{field}`")) && text.contains(rule), "{rule}: {text}");
        }
        assert_eq!(service.forms_view().expect("view").versions.len(), 1, "nothing was published");
    }

    #[test]
    fn a_device_gets_only_the_versions_it_lacks_in_one_small_answer() {
        let (_dir, service) = service();
        service.publish_form(&version_2(), "admin.uji", noon()).expect("publish");
        service.set_form_default(Some("73.15"), "dtsen-ground-check@2", "admin.uji", noon()).expect("default");
        let villages = vec!["73.14.01.1001".to_string()];
        let fresh = service.forms_delivery(&villages, &["dtsen-ground-check@1".into()]).expect("delivery");
        assert_eq!(fresh.forms.len(), 1, "version 2 only: the built-in one is on every device");
        assert!(fresh.defaults.is_empty(), "73.15's default is not this device's: {:?}", fresh.defaults);
        let bytes = sync_core::sync::encode(&fresh).len();
        eprintln!("one form version delivered: {bytes} bytes on the wire");
        assert!(bytes < 16 * 1024, "a version travels compressed: {bytes} bytes");
        let have = ["dtsen-ground-check@1".to_string(), "dtsen-ground-check@2".to_string()];
        let current = service.forms_delivery(&villages, &have).expect("delivery");
        assert!(current.forms.is_empty());
        assert_eq!(current.token, fresh.token, "the token names the catalog, not the device");
        service.set_form_default(None, "dtsen-ground-check@2", "admin.uji", noon()).expect("global");
        let moved = service.forms_delivery(&villages, &have).expect("delivery");
        assert_ne!(moved.token, current.token, "a new default changes the token");
        assert_eq!(moved.defaults, [(String::new(), "dtsen-ground-check@2".to_string())]);
    }

    #[test]
    fn defaults_are_per_kabupaten_with_a_global_fallback() {
        let (_dir, service) = service();
        service.publish_form(&version_2(), "admin.uji", noon()).expect("publish");
        let unknown = service.set_form_default(None, "dtsen-ground-check@9", "admin.uji", noon());
        assert!(matches!(unknown, Err(FormsError::UnknownForm(_))), "{unknown:?}");
        let bad = service.set_form_default(Some("99.99"), "dtsen-ground-check@2", "admin.uji", noon());
        assert!(matches!(bad, Err(FormsError::BadKabupaten(_))), "{bad:?}");
        let set = service.set_form_default(Some("7314"), "dtsen-ground-check@2", "admin.uji", noon()).expect("set");
        assert_eq!(set.kabupaten, "73.14");
        assert!(!set.name.is_empty(), "the kabupaten is named");
        let defaults = service.db.read(|tx| tx.form_defaults()).expect("defaults");
        assert_eq!(default_for_village(&defaults, "73.14.01.1001"), "dtsen-ground-check@2");
        assert_eq!(default_for_village(&defaults, "73.15.01.1001"), "dtsen-ground-check@1", "built-in elsewhere");
        service.set_form_default(None, "dtsen-ground-check@2", "admin.uji", noon()).expect("global");
        let defaults = service.db.read(|tx| tx.form_defaults()).expect("defaults");
        assert_eq!(default_for_village(&defaults, "73.15.01.1001"), "dtsen-ground-check@2");
        let view = service.forms_view().expect("view");
        let listed: Vec<(&str, &str)> = view.defaults.iter().map(|d| (d.kabupaten.as_str(), d.form.as_str())).collect();
        assert_eq!(listed, [("", "dtsen-ground-check@2"), ("73.14", "dtsen-ground-check@2")]);
    }
}
