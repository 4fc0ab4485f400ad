//! End-to-end scenarios: the real `pilar` and `pilar-server` binaries on real device stores.

mod accounts;
mod campaign;
mod export;
mod faults;
mod forms;
mod hostile;
mod hostile_display;
mod load;
mod migrate;
mod no_loss;
mod office;
mod office_export;
mod offline_session;
mod packs;
mod photos;
mod postgres;
mod readme;
mod reconfirm;
mod refresh_retry;
mod roster;
mod server_lifecycle;
mod several_servers;
mod sync;
mod trust;
