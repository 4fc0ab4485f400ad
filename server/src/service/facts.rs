//! Derived facts per household (review status, conflicts, last visit, final outcome) and the
//! duplicate keys, for the supervisor's lists and the progress report. Facts are derived, never
//! edited: every household write marks the household stale with its new version
//! ([`crate::storage::Tx::put_household`]), and [`Service::refresh_derived`] recomputes the stale
//! ones from their documents, a few hundred per write transaction, so syncs interleave with a
//! large refresh. Sync never pays for them; the first list after new work, or the background
//! refresh after a roster import, does. A household written again while its facts are derived
//! stays stale (the version moved), so facts never disagree with documents for long, whatever
//! order concurrent writers commit in.

use super::accounts::secret;
use super::{Service, corrupt};
use crate::storage::{FactsRow, StorageError, Transactions, Tx};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use sync_core::form::FormDefinition;
use sync_core::model::{DeviceId, Household, HouseholdState, ReviewStatus};
use sync_core::protocol::HouseholdBrief;

/// Households whose facts one write transaction recomputes (about 0.1 s of work).
const FACTS_PER_TRANSACTION: u32 = 200;

/// The server secret that makes duplicate-detection keys unlinkable outside this database (NIK
/// and KK numbers are never stored as plain lookup keys).
const LOOKUP_KEY_NAME: &str = "lookup_key";

pub(super) fn json<T: serde::Serialize>(value: &T) -> Result<String, StorageError> {
    serde_json::to_string(value).map_err(|e| corrupt(format!("cannot encode facts: {e}")))
}

pub(super) fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StorageError> {
    serde_json::from_str(text).map_err(|e| corrupt(format!("stored facts are not readable: {e}")))
}

fn keyed(key: &[u8], kind: &str, value: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(key);
    hasher.update(kind.as_bytes());
    hasher.update([0]);
    hasher.update(value.as_bytes());
    hex::encode(hasher.finalize())
}

/// The keyed hash a household's facts hold for a NIK (`nik`) or KK number (`kk`), so a search
/// finds it without the number being stored; `None` before any facts were derived.
pub(super) fn lookup_key(
    tx: &mut dyn crate::storage::ReadTx,
    kind: &str,
    value: &str,
) -> Result<Option<String>, StorageError> {
    Ok(tx.server_secret(LOOKUP_KEY_NAME)?.map(|key| keyed(&key, kind, value)))
}

/// A name compared for duplicates: lower case, letters and digits only, words single-spaced.
pub(super) fn normalised_name(name: &str) -> String {
    name.to_lowercase()
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The RT as compared for duplicates and searched: digits without leading zeros (`003` = `3`).
pub(super) fn normalised_rt(rt: &str) -> String {
    let digits = rt.trim().trim_start_matches('0');
    if digits.is_empty() { "0".into() } else { digits.to_string() }
}

/// `text` cut to at most `chars` characters: a search key stays small enough for any index entry
/// (PostgreSQL refuses index rows over about 2.7 kB), however long an answer a device sent.
fn bounded(text: String, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((end, _)) => text[..end].to_string(),
        None => text,
    }
}

/// The brief a list shows, from a household's state (review status already effective).
pub(super) fn brief(
    state: &HouseholdState,
    village: &str,
    review: Option<ReviewStatus>,
    conflicts: u32,
) -> HouseholdBrief {
    let last = state.last_visit();
    HouseholdBrief {
        household: state.id,
        village: village.to_string(),
        head_name: state.answer_text("head_name"),
        rt: state.answer_text("rt"),
        review: review.map(|r| r.as_str().to_string()),
        review_by: state.review.by.clone(),
        review_at: state.review.at.clone(),
        comment: state.review.comments.last().map(|c| c.text.clone()),
        visits: state.visits.len() as u32,
        last_outcome: last.and_then(|v| v.outcome),
        last_visit_by: last.map(|v| v.user.clone()),
        last_visit_at: last.map(|v| v.at.clone()),
        conflicts,
    }
}

/// Recompute the facts of up to `limit` stale households; returns how many it looked at (the
/// caller repeats, one short transaction at a time, until 0).
fn refresh_some(tx: &mut dyn Tx, forms: &super::forms::FormCache, limit: u32) -> Result<usize, StorageError> {
    let stale = tx.stale_facts(limit)?;
    if stale.is_empty() {
        return Ok(0);
    }
    let key = secret(tx, LOOKUP_KEY_NAME)?;
    let set = forms.set(tx)?;
    for (id, version) in &stale {
        if let Some(row) = tx.household(*id)? {
            let household = Household::load(*id, &row.doc, DeviceId(uuid::Uuid::nil()))
                .map_err(|e| corrupt(format!("household {id}: {e}")))?;
            // Read with the version the household records (admission refused any other).
            let form = set.get(&household.form_key()).map_or(FormDefinition::default_dtsen(), |f| f.as_ref());
            let (facts, keys, days) = derive(&household, &row.village, *version, &key, form)?;
            tx.put_facts(&facts, &keys, &days)?;
        }
        tx.clear_stale_facts(*id, *version)?;
    }
    Ok(stale.len())
}

/// The keys of a household's facts besides its facts: duplicate keys (kind, keyed hash) and its
/// visits per local day.
type Derived = (FactsRow, Vec<(String, String)>, Vec<(String, u32)>);

/// One household's facts, duplicate keys and visits per day (in the village's local time).
fn derive(
    household: &Household,
    village: &str,
    version: u64,
    key: &[u8],
    form: &FormDefinition,
) -> Result<Derived, StorageError> {
    let state = household.state();
    let review = household.review_status(&state);
    let conflicts = household.conflicts();
    let merged_into = state.links.get("merged_into").and_then(|v| v.as_text()).map(str::to_string);
    let final_outcome =
        state.last_visit().and_then(|v| v.outcome).filter(|code| form.outcome(*code).is_some_and(|o| o.is_final));
    let facts = FactsRow {
        household: state.id,
        village: village.to_string(),
        version,
        brief: json(&brief(&state, village, review, 0))?,
        conflicts: json(&conflicts.iter().map(|(p, v)| (p.to_string(), v)).collect::<Vec<_>>())?,
        conflict_count: conflicts.len() as u32,
        review: review.map(|r| r.as_str().to_string()),
        final_outcome,
        last_visit_by: state.last_visit().map(|v| v.user.clone()),
        visits: state.visits.len() as u32,
        merged_into: merged_into.clone(),
        name_key: bounded(state.answer_text("head_name").map(|n| normalised_name(&n)).unwrap_or_default(), 120),
        rt_key: bounded(state.answer_text("rt").map(|r| normalised_rt(&r)).unwrap_or_default(), 16),
        last_outcome: state.last_visit().and_then(|v| v.outcome),
    };
    // A retired household is no longer a family of its own: it suspects nothing, and its visits
    // are counted with the survivor's.
    if merged_into.is_some() {
        return Ok((facts, Vec::new(), Vec::new()));
    }
    let zone = sync_core::ids::LocalZone::of_region_text(village);
    let mut days: std::collections::BTreeMap<String, u32> = std::collections::BTreeMap::new();
    for visit in &state.visits {
        // A visit whose time does not read is counted nowhere (admission refuses such times).
        let Ok(at) = time::OffsetDateTime::parse(visit.at.trim(), &time::format_description::well_known::Rfc3339)
        else {
            continue;
        };
        let local = zone.map_or(at, |zone| zone.local(at));
        *days.entry(local.date().to_string()).or_default() += 1;
    }
    let mut keys: BTreeSet<(&str, String)> = BTreeSet::new();
    if let Some(kk) = state.answer_text("kk_number").filter(|k| !k.is_empty()) {
        keys.insert(("same_kk", keyed(key, "kk", &kk)));
    }
    for member in state.current_members() {
        if let Some(nik) = member.answers.get("nik").and_then(|v| v.as_text()).filter(|n| !n.is_empty()) {
            keys.insert(("shared_nik", keyed(key, "nik", nik)));
        }
    }
    if let Some(name) = state.answer_text("head_name").map(|n| normalised_name(&n)).filter(|n| !n.is_empty()) {
        let rt = state.answer_text("rt").map(|r| normalised_rt(&r)).unwrap_or_default();
        keys.insert(("same_head_name", keyed(key, "name", &format!("{village}|{rt}|{name}"))));
    }
    Ok((facts, keys.into_iter().map(|(kind, k)| (kind.to_string(), k)).collect(), days.into_iter().collect()))
}

impl Service {
    /// Bring the derived facts behind the supervisor's lists up to date, in short write
    /// transactions; when nothing is stale (the usual case) it only reads (also run in the
    /// background after a roster import, so the first list does not pay for a whole kabupaten).
    pub fn refresh_derived(&self) -> Result<(), StorageError> {
        if self.db.read(|tx| tx.stale_facts(1))?.is_empty() {
            return Ok(());
        }
        while self.db.write(|tx| refresh_some(tx, &self.forms, FACTS_PER_TRANSACTION))? > 0 {}
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_names_and_rts_compare_as_people_write_them() {
        assert_eq!(normalised_name("  Wette'E   Bin ALI "), normalised_name("wette e bin ali"));
        assert_eq!(normalised_name("Sitti Regapu’u"), "sitti regapu u");
        assert_ne!(normalised_name("La Baso"), normalised_name("La Basso"));
        assert_eq!(normalised_rt("003"), normalised_rt("3"));
        assert_eq!(normalised_rt("000"), "0");
    }
}
