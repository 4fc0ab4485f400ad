//! End-to-end scenarios: the real `pilar` binary on real device stores.

mod offline_session;
