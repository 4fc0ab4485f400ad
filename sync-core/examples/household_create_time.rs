//! Prints how long creating household documents takes, one operation at a time
//! (`Household::create`) and in one batch (`Household::create_batched`), for roster-sized
//! households (3 members of 10 answers, 8 household answers).
//!
//! Run with `cargo run --release -p sync-core --example household_create_time [households]`.

use std::collections::BTreeMap;
use std::time::Instant;
use sync_core::model::{DeviceId, Editor, Edits, Household, HouseholdId, MemberId};
use sync_core::value::FieldValue;

/// Answers by field name.
type Answers = BTreeMap<String, FieldValue>;

fn household(n: usize) -> (Answers, Vec<(MemberId, Answers)>) {
    let text = |s: String| FieldValue::Text(s);
    let answers = BTreeMap::from([
        ("dtsen_family_id".to_string(), text(format!("SYN-{n:07}"))),
        ("village_code".to_string(), text("73.14.01.1001".into())),
        ("kk_number".to_string(), text(format!("73140101012{:05}", 9000 + n % 1000))),
        ("rt".to_string(), text("003".into())),
        ("rw".to_string(), text("001".into())),
        ("address".to_string(), text(format!("Jl. Contoh No. {}", n % 200))),
        ("head_name".to_string(), text("Andi Sintetis".into())),
    ]);
    let members = (0..3)
        .map(|m| {
            let answers = BTreeMap::from([
                ("seq".to_string(), FieldValue::Int(m + 1)),
                ("full_name".to_string(), text(format!("Andi Sintetis {m}"))),
                ("nik".to_string(), text(format!("73140115038{m}{:05}", 9000 + n % 1000))),
                ("sex".to_string(), FieldValue::Int(1)),
                ("birth_date".to_string(), text("1980-03-15".into())),
                ("age_years".to_string(), FieldValue::Int(45)),
                ("relationship".to_string(), FieldValue::Int(if m == 0 { 1 } else { 3 })),
                ("presence".to_string(), FieldValue::Int(1)),
            ]);
            (MemberId::random(), answers)
        })
        .collect();
    (answers, members)
}

fn main() {
    let count: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(5000);
    let editor = Editor { user: "admin".into(), device: DeviceId::random(), now: time::OffsetDateTime::UNIX_EPOCH };
    let inputs: Vec<_> = (0..count).map(household).collect();
    for round in 0..2 {
        let start = Instant::now();
        let mut bytes = 0;
        for (answers, members) in &inputs {
            let edits = Edits {
                answers: answers.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect(),
                add_members: members.clone(),
                ..Edits::default()
            };
            let (h, saved) =
                Household::create(HouseholdId::random(), "dtsen-ground-check@1", &editor, &edits).expect("create");
            bytes += h.save().len() + saved.bytes.len();
        }
        let one = start.elapsed();
        let start = Instant::now();
        let mut batched_bytes = 0;
        for (answers, members) in &inputs {
            let (h, saved) =
                Household::create_batched(HouseholdId::random(), "dtsen-ground-check@1", &editor, answers, members)
                    .expect("create");
            batched_bytes += h.save().len() + saved.bytes.len();
        }
        let batched = start.elapsed();
        println!(
            "round {round}: {count} households, create + save: one op at a time {:.3} ms each ({bytes} B), batched {:.3} ms each ({batched_bytes} B)",
            one.as_secs_f64() * 1000.0 / count as f64,
            batched.as_secs_f64() * 1000.0 / count as f64
        );
    }
}
