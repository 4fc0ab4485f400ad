//! Browser tests: headless Chromium (Debian's `chromium` and `chromium-driver`) driven with
//! WebDriver through [`pilar_tests::browser::Browser`], against a real `pilar-server`.

mod harness;
mod health;
mod office;
