//! Review states pinned to document versions: an approval or a return covers the heads it
//! recorded, and any later change that is not itself a review puts the household back in the queue.

use std::collections::BTreeMap;
use sync_core::form::FormDefinition;
use sync_core::model::{DeviceId, Editor, Edits, Household, HouseholdId, NewVisit, ReviewStatus, VisitId};
use sync_core::value::FieldValue;
use time::macros::datetime;

fn text(s: &str) -> Option<FieldValue> {
    Some(FieldValue::Text(s.to_string()))
}

fn review(household: &mut Household, editor: &Editor, status: &str) {
    let heads = household.heads().iter().map(|h| h.to_string()).collect::<Vec<_>>().join(",");
    let edits = Edits {
        review: BTreeMap::from([
            ("status".to_string(), text(status)),
            ("by".to_string(), text(&editor.user)),
            ("approved_heads".to_string(), text(&heads)),
        ]),
        ..Edits::default()
    };
    household.apply(editor, "review", &edits, |_| Ok::<(), ()>(())).expect("apply").expect("ok");
}

fn status(household: &Household) -> Option<ReviewStatus> {
    household.review_status(&household.state())
}

#[test]
fn an_approval_goes_stale_with_any_later_change_and_a_return_waits_for_the_fix() {
    let now = datetime!(2026-11-20 09:00 +8);
    let enumerator = Editor { user: "pkh.a".into(), device: DeviceId::random(), now };
    let supervisor = Editor { user: "spv.panca".into(), device: DeviceId::random(), now };
    let form = FormDefinition::default_dtsen();
    let first = Edits { answers: BTreeMap::from([("head_name".to_string(), text("La Sintetis"))]), ..Edits::default() };
    let (mut household, _) =
        Household::create(HouseholdId::random(), &form.key(), &enumerator, &first).expect("create");
    assert_eq!(status(&household), None, "not visited: nothing to review");
    let visit = NewVisit {
        id: VisitId::random(),
        outcome: 2,
        lat: None,
        lon: None,
        accuracy_m: None,
        note: None,
        answers: BTreeMap::new(),
    };
    household
        .apply(&enumerator, "visit", &Edits { visit: Some(visit), ..Edits::default() }, |_| Ok::<(), ()>(()))
        .expect("apply")
        .expect("ok");
    assert_eq!(status(&household), Some(ReviewStatus::AwaitingReview));

    review(&mut household, &supervisor, "approved");
    assert_eq!(status(&household), Some(ReviewStatus::Approved));
    let fix = Edits {
        answers: BTreeMap::from([("floor_area_m2".to_string(), Some(FieldValue::Int(40)))]),
        ..Edits::default()
    };
    household.apply(&enumerator, "edit", &fix, |_| Ok::<(), ()>(())).expect("apply").expect("ok");
    assert_eq!(status(&household), Some(ReviewStatus::AwaitingReview), "the approval is stale");
    review(&mut household, &supervisor, "approved");
    assert_eq!(status(&household), Some(ReviewStatus::Approved), "approved again");

    review(&mut household, &supervisor, "returned");
    assert_eq!(status(&household), Some(ReviewStatus::Returned));
    let fix = Edits {
        answers: BTreeMap::from([("floor_area_m2".to_string(), Some(FieldValue::Int(42)))]),
        ..Edits::default()
    };
    household.apply(&enumerator, "edit", &fix, |_| Ok::<(), ()>(())).expect("apply").expect("ok");
    assert_eq!(status(&household), Some(ReviewStatus::AwaitingReview), "fixed: back in the queue");
}
