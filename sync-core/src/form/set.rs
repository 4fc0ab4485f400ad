//! The form versions a peer holds, by key: what each household's answers are read and checked
//! with. A server holds every published version; a device the built-in one and those its sync
//! delivered.

use super::definition::FormDefinition;
use std::collections::BTreeMap;
use std::sync::Arc;

/// `id@version` split into its id and version; `None` when the text is not a form key.
pub fn split_key(key: &str) -> Option<(&str, u32)> {
    let (id, version) = key.rsplit_once('@')?;
    let version: u32 = version.parse().ok()?;
    (!id.is_empty() && version > 0).then_some((id, version))
}

/// Form definitions by key.
#[derive(Debug, Clone, Default)]
pub struct FormSet {
    forms: BTreeMap<String, Arc<FormDefinition>>,
}

impl FormSet {
    /// Only the built-in DTSEN form, which every peer has.
    pub fn built_in() -> FormSet {
        static BUILT_IN: std::sync::OnceLock<Arc<FormDefinition>> = std::sync::OnceLock::new();
        let mut set = FormSet::default();
        set.insert(Arc::clone(BUILT_IN.get_or_init(|| Arc::new(FormDefinition::default_dtsen().clone()))));
        set
    }

    /// Add (or replace) a version.
    pub fn insert(&mut self, form: Arc<FormDefinition>) {
        self.forms.insert(form.key(), form);
    }

    /// The version named `key`.
    pub fn get(&self, key: &str) -> Option<&Arc<FormDefinition>> {
        self.forms.get(key)
    }

    /// The newest version held of form `id`.
    pub fn newest(&self, id: &str) -> Option<&Arc<FormDefinition>> {
        self.forms.values().filter(|f| f.id == id).max_by_key(|f| f.version)
    }

    /// Every key held, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.forms.keys().map(String::as_str)
    }

    /// Every version held, by key.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<FormDefinition>> {
        self.forms.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_split_into_id_and_a_positive_version() {
        assert_eq!(split_key("dtsen-ground-check@12"), Some(("dtsen-ground-check", 12)));
        assert_eq!(split_key("a@b@3"), Some(("a@b", 3)));
        for bad in ["", "x", "@1", "x@0", "x@-1", "x@v2"] {
            assert_eq!(split_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn newest_is_the_highest_version_of_one_id() {
        let mut set = FormSet::built_in();
        let base = FormDefinition::default_dtsen().clone();
        for version in [3, 2] {
            set.insert(Arc::new(FormDefinition { version, ..base.clone() }));
        }
        set.insert(Arc::new(FormDefinition { id: "lain".into(), version: 9, ..base.clone() }));
        assert_eq!(set.newest("dtsen-ground-check").map(|f| f.version), Some(3));
        assert_eq!(set.keys().count(), 4);
        assert!(set.get("dtsen-ground-check@2").is_some() && set.get("dtsen-ground-check@4").is_none());
    }
}
