//! Account rules every backend must show (users, assignments, devices, refresh tokens, keys), as
//! cases that take the service over a fresh, empty database (the rules live above the seam, so
//! they hold on every backend).

use crate::service::Service;
use crate::service::accounts::{DeviceAccess, DeviceLogin, DeviceRegistration, RefreshOutcome, RefreshRotation};
use crate::service::scope::EndedAssignment;
use crate::storage::{NewUser, StorageError};
use sync_core::model::DeviceId;
use sync_core::protocol::Role;
use time::OffsetDateTime;

/// A case: its name and the check, given the service over a fresh database.
pub type Case = (&'static str, fn(&Service));

/// Every conformance case.
pub const CASES: &[Case] = &[
    ("creating_a_user_twice_is_refused", creating_a_user_twice_is_refused),
    ("removed_villages_end_instead_of_disappearing", removed_villages_end_instead_of_disappearing),
    ("assigning_to_an_unknown_user_is_refused", assigning_to_an_unknown_user_is_refused),
    ("a_device_belongs_to_one_user", a_device_belongs_to_one_user),
    ("a_refresh_token_works_once_and_expires", a_refresh_token_works_once_and_expires),
    (
        "a_replaced_refresh_token_gets_its_successor_again_until_used",
        a_replaced_refresh_token_gets_its_successor_again_until_used,
    ),
    ("a_reused_refresh_token_ends_the_chain_and_the_sessions", a_reused_refresh_token_ends_the_chain_and_the_sessions),
    ("a_server_key_is_made_once_and_kept", a_server_key_is_made_once_and_kept),
    ("the_first_time_a_device_is_handed_a_village_is_kept", the_first_time_a_device_is_handed_a_village_is_kept),
    ("a_revoked_device_stays_revoked", a_revoked_device_stays_revoked),
    ("last_seen_is_updated_at_most_once_a_minute", last_seen_is_updated_at_most_once_a_minute),
];

fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000 + seconds).expect("time")
}

fn add_user(storage: &Service, name: &str, role: Role) {
    storage
        .create_user(&NewUser { name: name.into(), role, password_hash: "x".into(), created_at: at(0) })
        .expect("create user");
}

fn codes(c: &[&str]) -> Vec<String> {
    c.iter().map(|s| s.to_string()).collect()
}

fn register(storage: &Service, device: DeviceId, user: &str, hash: &str, now: OffsetDateTime) -> DeviceRegistration {
    storage
        .register_device(&DeviceLogin { device, user, name: "tablet 1", refresh_hash: hash, now })
        .expect("register device")
}

/// Exchange `old` for `new` on `device` at `now`: tokens expire after 100 s and a replaced
/// token may be retried for 50 s.
fn rotate(storage: &Service, device: DeviceId, old: &str, new: &str, now: OffsetDateTime) -> RefreshOutcome {
    rotate_issued_after(storage, device, old, new, now - time::Duration::seconds(100), now)
}

fn rotate_issued_after(
    storage: &Service,
    device: DeviceId,
    old: &str,
    new: &str,
    issued_after: OffsetDateTime,
    now: OffsetDateTime,
) -> RefreshOutcome {
    rotate_in_chain(storage, device, old, new, &[], issued_after, now)
}

/// Like [`rotate`], where the tokens `later` come after `new` in `old`'s chain.
fn rotate_in_chain(
    storage: &Service,
    device: DeviceId,
    old: &str,
    new: &str,
    later: &[&str],
    issued_after: OffsetDateTime,
    now: OffsetDateTime,
) -> RefreshOutcome {
    let rotation = RefreshRotation {
        device,
        old_hash: old,
        new_hash: new,
        issued_after,
        retry_until: now + time::Duration::seconds(50),
        now,
        later_in_chain: &|stored: &str| later.contains(&stored),
    };
    storage.rotate_refresh_token(&rotation).expect("rotate refresh token")
}

fn creating_a_user_twice_is_refused(storage: &Service) {
    add_user(storage, "pkh.contoh01", Role::Enumerator);
    let again = storage.create_user(&NewUser {
        name: "pkh.contoh01".into(),
        role: Role::Admin,
        password_hash: "y".into(),
        created_at: at(1),
    });
    assert!(matches!(again, Err(StorageError::UserExists(_))));
    let user = storage.user("pkh.contoh01").expect("read").expect("exists");
    assert_eq!(user.role, Role::Enumerator, "the first account is untouched");
    assert_eq!(storage.user_count().expect("count"), 1);
    assert!(storage.user("nobody").expect("read").is_none());
}

fn removed_villages_end_instead_of_disappearing(storage: &Service) {
    add_user(storage, "pkh.contoh01", Role::Enumerator);
    storage.set_village_assignments("pkh.contoh01", &codes(&["73.14.01.1001", "73.14.01.1002"]), at(1)).expect("set");
    storage.set_village_assignments("pkh.contoh01", &codes(&["73.14.01.1002", "73.14.01.1003"]), at(2)).expect("set");
    let scope = storage.village_scope("pkh.contoh01").expect("scope");
    assert_eq!(scope.active, codes(&["73.14.01.1002", "73.14.01.1003"]));
    assert_eq!(scope.ended, [EndedAssignment { village: "73.14.01.1001".into(), ended_at: at(2) }]);
    // Re-assigning an ended village makes it active again and no longer ended.
    storage.set_village_assignments("pkh.contoh01", &codes(&["73.14.01.1001"]), at(3)).expect("set");
    let scope = storage.village_scope("pkh.contoh01").expect("scope");
    assert_eq!(scope.active, codes(&["73.14.01.1001"]));
    let users = storage.users().expect("users");
    assert_eq!(users[0].villages, codes(&["73.14.01.1001"]));
    let ended: Vec<_> = scope.ended.iter().map(|e| (e.village.as_str(), e.ended_at)).collect();
    assert_eq!(ended, [("73.14.01.1002", at(3)), ("73.14.01.1003", at(3))]);
    // Ended and assigned again, then ended again: the latest end counts.
    storage.set_village_assignments("pkh.contoh01", &codes(&["73.14.01.1002"]), at(6)).expect("set");
    storage.set_village_assignments("pkh.contoh01", &[], at(7)).expect("set");
    let ended: Vec<_> = storage.village_scope("pkh.contoh01").expect("scope").ended;
    let ended: Vec<_> = ended.iter().map(|e| (e.village.as_str(), e.ended_at)).collect();
    assert_eq!(ended, [("73.14.01.1001", at(6)), ("73.14.01.1002", at(7)), ("73.14.01.1003", at(3))]);

    storage.set_kecamatan_assignments("pkh.contoh01", &codes(&["73.14.01"]), at(4)).expect("set");
    storage.set_kecamatan_assignments("pkh.contoh01", &[], at(5)).expect("set");
    assert!(storage.kecamatan_scope("pkh.contoh01").expect("scope").is_empty());
}

fn assigning_to_an_unknown_user_is_refused(storage: &Service) {
    let err = storage.set_kecamatan_assignments("nobody", &codes(&["73.14.01"]), at(0));
    assert!(matches!(err, Err(StorageError::NoSuchUser(_))));
    let err = storage.set_village_assignments("nobody", &codes(&["73.14.01.1001"]), at(0));
    assert!(matches!(err, Err(StorageError::NoSuchUser(_))));
}

fn a_device_belongs_to_one_user(storage: &Service) {
    add_user(storage, "pkh.contoh01", Role::Enumerator);
    add_user(storage, "pkh.contoh02", Role::Enumerator);
    let device = DeviceId::random();
    assert_eq!(register(storage, device, "pkh.contoh01", "h1", at(10)), DeviceRegistration::Registered);
    assert_eq!(register(storage, device, "pkh.contoh02", "h2", at(11)), DeviceRegistration::RegisteredToAnotherUser);
    assert!(matches!(
        storage.device_access(device, "pkh.contoh01", at(12)).expect("access"),
        DeviceAccess::Active { role: Role::Enumerator, .. }
    ));
    assert_eq!(storage.device_access(device, "pkh.contoh02", at(12)).expect("access"), DeviceAccess::Unknown);
    assert_eq!(
        storage.device_access(DeviceId::random(), "pkh.contoh01", at(12)).expect("access"),
        DeviceAccess::Unknown
    );
    // The other user's attempt did not replace the refresh token.
    let rotated = rotate(storage, device, "h1", "h3", at(13));
    assert_eq!(rotated, RefreshOutcome::Rotated { user: "pkh.contoh01".into(), role: Role::Enumerator });
    let listed = storage.devices().expect("devices");
    assert_eq!((listed.len(), listed[0].user.as_str(), listed[0].registered_at), (1, "pkh.contoh01", at(10)));
    // Admission bounds a change's time by the first login, which later logins do not move.
    assert_eq!(register(storage, device, "pkh.contoh01", "h4", at(20)), DeviceRegistration::Registered);
    assert_eq!(storage.device_registered_at(device).expect("registered at"), Some(at(10)));
    assert_eq!(storage.device_registered_at(DeviceId::random()).expect("registered at"), None);
}

fn a_refresh_token_works_once_and_expires(storage: &Service) {
    add_user(storage, "pkh.contoh01", Role::Enumerator);
    let device = DeviceId::random();
    register(storage, device, "pkh.contoh01", "h1", at(10));
    let rotated = rotate(storage, device, "h1", "h2", at(20));
    assert_eq!(rotated, RefreshOutcome::Rotated { user: "pkh.contoh01".into(), role: Role::Enumerator });
    assert_eq!(rotate(storage, DeviceId::random(), "h2", "h3", at(30)), RefreshOutcome::Invalid, "other device");
    assert_eq!(rotate(storage, device, "h7", "h8", at(30)), RefreshOutcome::Invalid, "unknown token");
    // A token issued before the cut-off has expired.
    assert_eq!(rotate_issued_after(storage, device, "h2", "h3", at(25), at(30)), RefreshOutcome::Invalid);
    // A new login replaces the token, and the replaced one is not retriable either.
    register(storage, device, "pkh.contoh01", "h9", at(40));
    assert_eq!(rotate(storage, device, "h2", "h3", at(50)), RefreshOutcome::Invalid);
    assert_eq!(rotate(storage, device, "h1", "h2", at(50)), RefreshOutcome::Invalid);
    assert!(matches!(rotate(storage, device, "h9", "h10", at(50)), RefreshOutcome::Rotated { .. }));
}

fn a_replaced_refresh_token_gets_its_successor_again_until_used(storage: &Service) {
    add_user(storage, "pkh.contoh01", Role::Enumerator);
    let device = DeviceId::random();
    register(storage, device, "pkh.contoh01", "h1", at(10));
    let rotated = RefreshOutcome::Rotated { user: "pkh.contoh01".into(), role: Role::Enumerator };
    let retried = RefreshOutcome::Retried { user: "pkh.contoh01".into(), role: Role::Enumerator };
    assert_eq!(rotate(storage, device, "h1", "h2", at(20)), rotated);
    // The answer was lost: the same token, the same successor, as often as the device retries.
    assert_eq!(rotate(storage, device, "h1", "h2", at(25)), retried);
    assert_eq!(rotate(storage, device, "h1", "h2", at(70)), retried, "the window closes at 20 + 50 s");
    // The successor works, and can be retried in its turn.
    assert_eq!(rotate(storage, device, "h2", "h3", at(80)), rotated);
    assert_eq!(rotate(storage, device, "h2", "h3", at(81)), retried);
    assert_eq!(rotate(storage, device, "h3", "h4", at(82)), rotated);
    // Revocation ends retries too.
    assert_eq!(rotate(storage, device, "h4", "h5", at(85)), rotated);
    storage.revoke_device(device, at(90)).expect("revoke");
    assert_eq!(rotate(storage, device, "h4", "h5", at(91)), RefreshOutcome::Revoked);
}

fn a_reused_refresh_token_ends_the_chain_and_the_sessions(storage: &Service) {
    add_user(storage, "pkh.contoh01", Role::Enumerator);
    let device = DeviceId::random();
    let reused = RefreshOutcome::Reused { user: "pkh.contoh01".into() };
    let sessions_ended = |storage: &Service, now| match storage.device_access(device, "pkh.contoh01", now) {
        Ok(DeviceAccess::Active { sessions_ended_at, .. }) => sessions_ended_at,
        other => panic!("{other:?}"),
    };
    register(storage, device, "pkh.contoh01", "h1", at(10));
    assert!(matches!(rotate(storage, device, "h1", "h2", at(20)), RefreshOutcome::Rotated { .. }));
    assert_eq!(sessions_ended(storage, at(21)), None);
    // The replaced token after its retry window (20 + 50 s): the chain ends, h2 no longer works.
    assert_eq!(rotate(storage, device, "h1", "h2", at(71)), reused);
    assert_eq!(rotate(storage, device, "h2", "h3", at(72)), RefreshOutcome::Invalid, "the chain was ended");
    assert_eq!(sessions_ended(storage, at(72)), Some(at(71)), "access tokens issued before are refused");

    // A password login starts a new chain; its sessions are younger than the end.
    assert_eq!(register(storage, device, "pkh.contoh01", "h5", at(80)), DeviceRegistration::Registered);
    assert!(matches!(rotate(storage, device, "h5", "h6", at(81)), RefreshOutcome::Rotated { .. }));
    assert!(matches!(rotate(storage, device, "h6", "h7", at(82)), RefreshOutcome::Rotated { .. }));
    // The token before the one just replaced (its successor was used, within any window).
    assert_eq!(rotate_in_chain(storage, device, "h5", "h6", &["h7"], at(0), at(83)), reused);
    assert_eq!(sessions_ended(storage, at(84)), Some(at(83)));

    // A token further back in the chain: the current one descends from it.
    register(storage, device, "pkh.contoh01", "h10", at(90));
    for (old, new, now) in [("h10", "h11", 91), ("h11", "h12", 92), ("h12", "h13", 93)] {
        assert!(matches!(rotate(storage, device, old, new, at(now)), RefreshOutcome::Rotated { .. }));
    }
    let unrelated = rotate_in_chain(storage, device, "h99", "h100", &["h101"], at(0), at(94));
    assert_eq!(unrelated, RefreshOutcome::Invalid, "a token of no chain of the device changes nothing");
    assert!(matches!(rotate(storage, device, "h13", "h14", at(95)), RefreshOutcome::Rotated { .. }));
    assert_eq!(rotate_in_chain(storage, device, "h11", "h12", &["h13", "h14"], at(0), at(96)), reused);
    assert_eq!(rotate(storage, device, "h14", "h15", at(97)), RefreshOutcome::Invalid, "the chain was ended");
}

fn the_first_time_a_device_is_handed_a_village_is_kept(storage: &Service) {
    let (device, other) = (DeviceId::random(), DeviceId::random());
    storage.note_villages_handed(device, &codes(&["73.14.01.1001"]), at(10)).expect("note");
    storage.note_villages_handed(device, &codes(&["73.14.01.1001", "73.14.01.1002"]), at(20)).expect("note");
    storage.note_villages_handed(device, &codes(&["73.14.01.1001"]), at(5)).expect("an older answer, late");
    let handed: Vec<_> = storage.villages_handed(device).expect("handed").into_iter().collect();
    assert_eq!(handed, [("73.14.01.1001".to_string(), at(10)), ("73.14.01.1002".to_string(), at(20))]);
    assert!(storage.villages_handed(other).expect("handed").is_empty());
}

fn a_server_key_is_made_once_and_kept(storage: &Service) {
    let key = storage.server_key("refresh_key").expect("key");
    assert_eq!(key.len(), 32);
    assert_eq!(storage.server_key("refresh_key").expect("key again"), key);
    assert_ne!(storage.server_key("another_key").expect("another"), key);
}

fn a_revoked_device_stays_revoked(storage: &Service) {
    add_user(storage, "pkh.contoh01", Role::Enumerator);
    let device = DeviceId::random();
    register(storage, device, "pkh.contoh01", "h1", at(10));
    let revoked = storage.revoke_device(device, at(50)).expect("revoke").expect("known device");
    assert_eq!(revoked.revoked_at, Some(at(50)));
    let again = storage.revoke_device(device, at(60)).expect("revoke").expect("known device");
    assert_eq!(again.revoked_at, Some(at(50)), "the first revocation time is kept");
    assert_eq!(storage.device_access(device, "pkh.contoh01", at(70)).expect("access"), DeviceAccess::Revoked);
    assert_eq!(rotate(storage, device, "h1", "h4", at(70)), RefreshOutcome::Revoked);
    assert_eq!(register(storage, device, "pkh.contoh01", "h5", at(80)), DeviceRegistration::Revoked);
    assert_eq!(storage.device_access(device, "pkh.contoh01", at(90)).expect("access"), DeviceAccess::Revoked);
    assert!(storage.revoke_device(DeviceId::random(), at(80)).expect("revoke").is_none());
}

fn last_seen_is_updated_at_most_once_a_minute(storage: &Service) {
    add_user(storage, "pkh.contoh01", Role::Enumerator);
    let device = DeviceId::random();
    register(storage, device, "pkh.contoh01", "h1", at(0));
    storage.device_access(device, "pkh.contoh01", at(30)).expect("access");
    assert_eq!(storage.devices().expect("devices")[0].last_seen_at, at(0));
    storage.device_access(device, "pkh.contoh01", at(90)).expect("access");
    assert_eq!(storage.devices().expect("devices")[0].last_seen_at, at(90));
}
