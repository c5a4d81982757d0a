//! Stored classes of many customers as small codes: a whole-base run
//! compares ten million decisions with the stored classes, which as
//! strings in maps were a fifth of a run.

use super::SchemeSet;
use std::sync::Arc;

/// No stored class; any other code is 1 + the class's index in its
/// scheme's name list.
pub(super) const NO_CLASS: u16 = 0;

/// Scheme keys and, per scheme, the class names codes stand for. Starts
/// with a set's classes; names met in the data are added.
#[derive(Debug, Clone, Default)]
pub(super) struct ClassNames {
    schemes: Vec<(String, Vec<String>)>,
}

/// A stored row coded against [`ClassNames`] by a reader that cannot add
/// names (it runs beside the owner).
pub(super) enum Coded {
    Known {
        customer: i64,
        scheme: usize,
        code: u16,
    },
    /// A class name (or scheme) not known yet.
    New {
        customer: i64,
        scheme: String,
        class: String,
    },
}

impl ClassNames {
    pub(super) fn of(set: &SchemeSet) -> ClassNames {
        ClassNames {
            schemes: set
                .schemes
                .iter()
                .map(|s| (s.key.clone(), s.class_keys()))
                .collect(),
        }
    }

    pub(super) fn scheme(&self, key: &str) -> Option<usize> {
        self.schemes.iter().position(|(k, _)| k == key)
    }

    pub(super) fn len(&self) -> usize {
        self.schemes.len()
    }

    pub(super) fn code(&self, customer: i64, scheme: &str, class: &str) -> Coded {
        let known = self.scheme(scheme).and_then(|s| {
            let c = self.schemes[s].1.iter().position(|c| c == class)?;
            Some((s, u16::try_from(c + 1).ok()?))
        });
        match known {
            Some((scheme, code)) => Coded::Known {
                customer,
                scheme,
                code,
            },
            None => Coded::New {
                customer,
                scheme: scheme.to_string(),
                class: class.to_string(),
            },
        }
    }

    /// The code of `class` in scheme `scheme`, adding the name if new
    /// (None past 65,535 names in one scheme, which no scheme has).
    pub(super) fn intern(&mut self, scheme: usize, class: &str) -> Option<u16> {
        let names = &mut self.schemes[scheme].1;
        let at = match names.iter().position(|c| c == class) {
            Some(at) => at,
            None => {
                names.push(class.to_string());
                names.len() - 1
            }
        };
        u16::try_from(at + 1).ok()
    }

    pub(super) fn name(&self, scheme: usize, code: u16) -> Option<&str> {
        let names = &self.schemes.get(scheme)?.1;
        names
            .get(usize::from(code).checked_sub(1)?)
            .map(String::as_str)
    }
}

/// Every customer's stored classes: per customer (ascending ids), one code
/// per scheme of its [`ClassNames`].
#[derive(Debug, Clone)]
pub(super) struct ClassGrid {
    pub(super) names: Arc<ClassNames>,
    ids: Vec<i64>,
    codes: Vec<u16>,
}

impl ClassGrid {
    pub(super) fn new(names: ClassNames) -> ClassGrid {
        ClassGrid {
            names: Arc::new(names),
            ids: Vec::new(),
            codes: Vec::new(),
        }
    }

    fn width(&self) -> usize {
        self.names.len()
    }

    /// Adds coded rows (in any order; appending in id order is the fast case).
    pub(super) fn add(&mut self, rows: Vec<Coded>) {
        for row in rows {
            let (customer, scheme, code) = match row {
                Coded::Known {
                    customer,
                    scheme,
                    code,
                } => (customer, scheme, code),
                Coded::New {
                    customer,
                    scheme,
                    class,
                } => {
                    let names = Arc::make_mut(&mut self.names);
                    let Some(s) = names.scheme(&scheme) else {
                        continue; // a scheme outside the set: nothing reads it
                    };
                    let Some(code) = names.intern(s, &class) else {
                        continue;
                    };
                    (customer, s, code)
                }
            };
            let at = self.place(customer);
            self.codes[at + scheme] = code;
        }
    }

    /// Where `customer`'s codes start, adding a row of no classes if needed.
    fn place(&mut self, customer: i64) -> usize {
        let w = self.width();
        if self.ids.last().is_none_or(|&last| last < customer) {
            self.ids.push(customer);
            self.codes.resize(self.codes.len() + w, NO_CLASS);
            return (self.ids.len() - 1) * w;
        }
        match self.ids.binary_search(&customer) {
            Ok(k) => k * w,
            Err(k) => {
                self.ids.insert(k, customer);
                self.codes
                    .splice(k * w..k * w, std::iter::repeat_n(NO_CLASS, w));
                k * w
            }
        }
    }

    /// Forgets a customer's classes (before reading them again, or when it is gone).
    pub(super) fn clear(&mut self, customer: i64) {
        if let Ok(k) = self.ids.binary_search(&customer) {
            let w = self.width();
            self.codes[k * w..(k + 1) * w].fill(NO_CLASS);
        }
    }

    /// Sets one class by name.
    pub(super) fn set(&mut self, customer: i64, scheme_key: &str, class: &str) {
        let Some(s) = self.names.scheme(scheme_key) else {
            return;
        };
        let Some(code) = Arc::make_mut(&mut self.names).intern(s, class) else {
            return;
        };
        let at = self.place(customer);
        self.codes[at + s] = code;
    }

    /// A customer's codes (None: no class stored).
    pub(super) fn row(&self, customer: i64) -> Option<&[u16]> {
        let w = self.width();
        let k = self.ids.binary_search(&customer).ok()?;
        Some(&self.codes[k * w..(k + 1) * w])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> ClassNames {
        ClassNames {
            schemes: vec![
                ("a".into(), vec!["x".into(), "y".into()]),
                ("b".into(), vec!["p".into()]),
            ],
        }
    }

    #[test]
    fn codes_stand_for_names_and_new_names_are_added() {
        let names = names();
        let mut grid = ClassGrid::new(names.clone());
        grid.add(vec![
            names.code(5, "a", "y"),
            names.code(5, "b", "gone"), // a class the scheme no longer has
            names.code(9, "a", "x"),
            names.code(9, "zzz", "x"), // a scheme outside the set
            names.code(2, "b", "p"),   // out of order
        ]);
        fn name(grid: &ClassGrid, customer: i64, scheme: usize) -> Option<String> {
            let code = grid.row(customer)?[scheme];
            grid.names.name(scheme, code).map(str::to_string)
        }
        assert_eq!(name(&grid, 5, 0).as_deref(), Some("y"));
        assert_eq!(name(&grid, 5, 1).as_deref(), Some("gone"));
        assert_eq!(name(&grid, 9, 0).as_deref(), Some("x"));
        assert_eq!(name(&grid, 9, 1), None);
        assert_eq!(name(&grid, 2, 1).as_deref(), Some("p"));
        assert_eq!(name(&grid, 2, 0), None);
        assert!(grid.row(3).is_none());
        grid.set(3, "a", "x");
        grid.clear(5);
        assert_eq!(name(&grid, 3, 0).as_deref(), Some("x"));
        assert_eq!(name(&grid, 5, 0), None);
        assert_eq!(grid.ids, vec![2, 3, 5, 9]);
    }
}
