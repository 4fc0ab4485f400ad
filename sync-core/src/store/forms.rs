//! Form versions on the device (issue 17): those a sync delivered besides the built-in one, which
//! version new visits use per kabupaten, and the server's catalog token they reflect. A household
//! is read and checked with the version it records; a version the device lacks is fetched on the
//! next sync (until then that household can be shown, not edited: `entry::save` refuses it).

use super::{DeviceStore, StoreError};
use crate::form::{FormDefinition, FormSet};
use crate::sync::FormsDelivery;
use rusqlite::{OptionalExtension, params};
use std::sync::Arc;

/// Added in schema 6 (also part of a new store).
pub(super) const SCHEMA_6: &str = r#"
CREATE TABLE forms (
    key TEXT PRIMARY KEY,
    definition TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE form_defaults (
    area TEXT PRIMARY KEY,
    form_key TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE forms_token (id INTEGER PRIMARY KEY CHECK (id = 1), token TEXT NOT NULL);
"#;

impl DeviceStore {
    /// Every form version this device holds: the built-in one and those delivered.
    pub fn forms(&self) -> Result<FormSet, StoreError> {
        let mut set = FormSet::built_in();
        let mut stmt = self.conn.prepare_cached("SELECT key, definition FROM forms")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        for row in rows {
            let (key, text) = row?;
            let form = FormDefinition::from_json(&text)
                .map_err(|e| StoreError::Corrupt(format!("stored form {key} does not read: {e}")))?;
            set.insert(Arc::new(form));
        }
        Ok(set)
    }

    /// The version new visits use in `village`: its kabupaten's default, else the global one, else
    /// the form this store was created with; the newest held version of that form when the
    /// default itself is not held.
    pub fn form_for_village(&self, forms: &FormSet, village: &str) -> Result<Arc<FormDefinition>, StoreError> {
        let kabupaten = village.get(..5).unwrap_or("");
        let chosen: Option<String> = self
            .conn
            .prepare_cached(
                "SELECT form_key FROM form_defaults WHERE area = ?1 OR area = '' ORDER BY area = '' LIMIT 1",
            )?
            .query_row(params![kabupaten], |r| r.get(0))
            .optional()?;
        let key = chosen.unwrap_or_else(|| self.identity.form.clone());
        if let Some(form) = forms.get(&key) {
            return Ok(Arc::clone(form));
        }
        let id = crate::form::split_key(&key).map(|(id, _)| id).unwrap_or(&key);
        forms
            .newest(id)
            .or_else(|| forms.get(&FormDefinition::default_dtsen().key()))
            .cloned()
            .ok_or_else(|| StoreError::Corrupt(format!("no version of form {key} on this device")))
    }

    /// The catalog token of the forms last delivered, if any.
    pub fn forms_token(&self) -> Result<Option<String>, StoreError> {
        Ok(self.conn.query_row("SELECT token FROM forms_token WHERE id = 1", [], |r| r.get(0)).optional()?)
    }

    /// Store a delivery in one transaction: every definition must read (else nothing is stored),
    /// versions are added (a held one is kept as it is: a published version never changes), the
    /// defaults are replaced, the token recorded.
    pub fn store_forms(&mut self, delivery: &FormsDelivery) -> Result<usize, StoreError> {
        let mut parsed = Vec::with_capacity(delivery.forms.len());
        for text in &delivery.forms {
            let form = FormDefinition::from_json(text)
                .map_err(|e| StoreError::Corrupt(format!("the server sent a form that does not read: {e}")))?;
            parsed.push((form.key(), serde_json::to_string(&form).unwrap_or_else(|_| text.clone())));
        }
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut added = 0;
        for (key, text) in &parsed {
            added += tx.execute("INSERT OR IGNORE INTO forms (key, definition) VALUES (?1, ?2)", params![key, text])?;
        }
        tx.execute("DELETE FROM form_defaults", [])?;
        for (area, key) in &delivery.defaults {
            tx.execute("INSERT OR REPLACE INTO form_defaults (area, form_key) VALUES (?1, ?2)", params![area, key])?;
        }
        tx.execute(
            "INSERT INTO forms_token (id, token) VALUES (1, ?1) ON CONFLICT (id) DO UPDATE SET token = excluded.token",
            params![delivery.token],
        )?;
        tx.commit()?;
        Ok(added)
    }
}
