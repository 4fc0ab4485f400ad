//! Form versions on a device (issue 17): a delivery is stored whole or not at all, new visits use
//! the village's kabupaten default (else the global one), a save with a newer version of a
//! household's form records it, and a household whose version the device lacks is shown with the
//! newest version held and refused for saving until a sync brings its version.

use std::collections::BTreeMap;
use std::sync::Arc;
use sync_core::entry::{self, EntryError};
use sync_core::form::{FieldKind, FormDefinition, Required};
use sync_core::ids::VillageCode;
use sync_core::model::{DeviceId, Edits};
use sync_core::store::{DeviceIdentity, DeviceStore};
use sync_core::sync::FormsDelivery;
use sync_core::value::FieldValue;
use tempfile::TempDir;
use time::macros::datetime;

const BILOKKA: &str = "73.14.01.1001";
const OTHER_KABUPATEN: &str = "73.15.01.1001";

fn store(dir: &TempDir) -> DeviceStore {
    let identity = DeviceIdentity {
        device: DeviceId::random(),
        user: "pkh.a".into(),
        form: FormDefinition::default_dtsen().key(),
    };
    let villages = [BILOKKA, OTHER_KABUPATEN].map(|v| VillageCode::parse(v).expect("real village"));
    DeviceStore::create(dir.path(), &identity, &villages, datetime!(2026-11-01 08:00 +8)).expect("create")
}

fn version(n: u32) -> FormDefinition {
    let mut form = FormDefinition::default_dtsen().clone();
    form.version = n;
    let mut question = form.household[0].clone();
    question.name = format!("pertanyaan_v{n}");
    question.kind = FieldKind::Boolean;
    question.required = Required::No;
    form.household.push(question);
    form
}

fn delivery(token: &str, forms: &[FormDefinition], defaults: &[(&str, &str)]) -> FormsDelivery {
    FormsDelivery {
        token: token.into(),
        defaults: defaults.iter().map(|(a, k)| (a.to_string(), k.to_string())).collect(),
        forms: forms.iter().map(|f| serde_json::to_string(f).expect("json")).collect(),
    }
}

#[test]
fn a_delivery_is_stored_whole_and_new_visits_use_the_kabupaten_default() {
    let dir = TempDir::new().expect("temp dir");
    let mut store = store(&dir);
    let forms = store.forms().expect("forms");
    assert_eq!(store.form_for_village(&forms, BILOKKA).expect("form").key(), "dtsen-ground-check@1");

    // One definition that does not read: nothing is stored, not even the good one.
    let mut bad = delivery("t1", &[version(2)], &[("", "dtsen-ground-check@2")]);
    bad.forms.push("{\"id\": \"broken\"".into());
    assert!(store.store_forms(&bad).is_err());
    assert_eq!(store.forms_token().expect("token"), None);
    assert_eq!(store.forms().expect("forms").keys().count(), 1);

    let good =
        delivery("t2", &[version(2), version(3)], &[("", "dtsen-ground-check@2"), ("73.14", "dtsen-ground-check@3")]);
    assert_eq!(store.store_forms(&good).expect("stored"), 2);
    assert_eq!(store.forms_token().expect("token").as_deref(), Some("t2"));
    let forms = store.forms().expect("forms");
    assert_eq!(store.form_for_village(&forms, BILOKKA).expect("form").key(), "dtsen-ground-check@3");
    assert_eq!(store.form_for_village(&forms, OTHER_KABUPATEN).expect("form").key(), "dtsen-ground-check@2");
    // A later delivery replaces the defaults and keeps the versions.
    store.store_forms(&delivery("t3", &[], &[("", "dtsen-ground-check@3")])).expect("stored");
    let forms = store.forms().expect("forms");
    assert_eq!(forms.keys().count(), 3);
    assert_eq!(store.form_for_village(&forms, OTHER_KABUPATEN).expect("form").key(), "dtsen-ground-check@3");
}

#[test]
fn a_save_with_a_newer_version_records_it_and_a_missing_version_refuses_the_save() {
    let dir = TempDir::new().expect("temp dir");
    let mut store = store(&dir);
    let now = datetime!(2026-11-02 09:00 +8);
    let v1 = FormDefinition::default_dtsen();
    let village = VillageCode::parse(BILOKKA).expect("village");
    let answers = BTreeMap::from([("head_name".to_string(), FieldValue::Text("La Sintetis".into()))]);
    let added = entry::add_household(&mut store, v1, &village, answers, vec![], now).expect("added");
    let id = added.household;

    store.store_forms(&delivery("t1", &[version(2)], &[("", "dtsen-ground-check@2")])).expect("stored");
    let form = entry::form_for_household(&store, id).expect("form");
    assert_eq!(form.key(), "dtsen-ground-check@2", "the default is a newer version of the household's form");
    let edits = Edits {
        answers: BTreeMap::from([("pertanyaan_v2".to_string(), Some(FieldValue::Bool(true)))]),
        ..Edits::default()
    };
    entry::save(&mut store, &form, id, "edit", &edits, now).expect("saved with version 2");
    assert_eq!(store.load(id).expect("load").household.form_key(), "dtsen-ground-check@2");
    // Saving with version 1 now would read a version-2 household with the wrong definition.
    let refused = entry::save(&mut store, v1, id, "edit", &Edits::default(), now).expect_err("older version");
    assert!(matches!(refused, EntryError::FormMismatch { .. }), "{refused}");

    // A second device holds only version 1 and receives the household at version 2.
    let other_dir = TempDir::new().expect("temp dir");
    let mut other = self::store(&other_dir);
    let stored = store.load(id).expect("load");
    let tx = other.write().expect("write");
    tx.save_received(&stored.household, BILOKKA, now).expect("received");
    tx.commit().expect("commit");
    let refused = entry::form_for_household(&other, id).expect_err("version 2 is not on this device");
    assert!(
        refused.to_string().contains("dtsen-ground-check@2") && refused.to_string().contains("pilar sync"),
        "{refused}"
    );
    let held = other.forms().expect("forms");
    let (shown, own) = entry::form_for_showing(&held, "dtsen-ground-check@2").expect("a version to show with");
    assert_eq!((shown.key(), own), ("dtsen-ground-check@1".to_string(), false));
    let held = Arc::new(version(2));
    other.store_forms(&delivery("t1", &[held.as_ref().clone()], &[])).expect("stored");
    assert_eq!(entry::form_for_household(&other, id).expect("now held").key(), "dtsen-ground-check@2");
}
