//! End-to-end scenarios: the real `pilar` and `pilar-server` binaries on real device stores.

mod accounts;
mod campaign;
mod export;
mod faults;
mod offline_session;
mod roster;
mod sync;
