//! The `config_keys!` macro: from one row per key (in `config/keys.rs`) it
//! writes the `ProducerConfig` struct, its defaults, `set`, `get`,
//! `keys()`, the per-key half of `validate` and the typed builders.
//!
//! A row is one of three shapes, by the section it is in:
//!
//! ```text
//! stored {                                  // the key has a field
//!     "linger.ms": Long = "5", Impl, "one-line description";
//!     INT_MS => linger: Duration = ms(5);   // codec => field: type = default
//!     /// builder doc (what it sets, "Defaults to ...")
//!     fn linger;                            // optional: a builder taking the field's type
//! }
//! extra {                                   // a field set by a builder, no key
//!     /// field doc
//!     statistics_callback: Option<StatsCallback> = None;
//! }
//! checked {                                 // validated, held nowhere
//!     "metrics.num.samples": Int = "2", Partial("2 (...)"), "one-line description";
//!     Int::<i32>::new(1, MAX_INT), only "2"; // codec[, the one value this release does]
//! }
//! refused {                                 // NotSupportedYet whatever the value
//!     "ssl.protocol": String = "TLSv1.3", NotYet(TLS), "one-line description";
//! }
//! ```
//!
//! The first line of every row is what [`KeyInfo`](super::KeyInfo) reports:
//! Java's name, Java's `ConfigDef` type, Java's default, the support level
//! and the description. The codec (`config/value.rs`) parses, validates and
//! prints the value. The macro only pastes rows into match arms and
//! struct fields; every decision about a value is the codec's, and every
//! rule between keys is in `ProducerConfig::validate`.

/// See the module doc; used once, in `config/keys.rs`.
macro_rules! config_keys {
    (
        $(#[$struct_attr:meta])*
        pub struct ProducerConfig;

        stored {
            $(
                $sname:literal: $skind:ident = $sdefault:literal, $ssupport:expr, $sdoc:literal;
                $scodec:expr => $field:ident: $ty:ty = $init:expr;
                $( $(#[doc = $bdoc:literal])* fn $method:ident; )?
            )*
        }
        extra {
            $(
                $(#[doc = $xdoc:literal])*
                $xfield:ident: $xty:ty = $xinit:expr;
            )*
        }
        checked {
            $(
                $cname:literal: $ckind:ident = $cdefault:literal, $csupport:expr, $cdoc:literal;
                $ccodec:expr $(, only $only:literal)?;
            )*
        }
        refused {
            $(
                $rname:literal: $rkind:ident = $rdefault:literal, NotYet($why:expr), $rdoc:literal;
            )*
        }
    ) => {
        $(#[$struct_attr])*
        pub struct ProducerConfig {
            /// Keys the caller set explicitly (by `set` or a builder), and
            /// the values as given.
            pub(super) explicit: BTreeMap<&'static str, String>,
            $(
                #[doc = concat!("`", $sname, "`: ", $sdoc, ".")]
                pub(crate) $field: $ty,
            )*
            $(
                $(#[doc = $xdoc])*
                pub(crate) $xfield: $xty,
            )*
        }

        const KEYS: &[KeyInfo] = &[
            $(KeyInfo {
                name: $sname,
                java_default: $sdefault,
                kind: Kind::$skind,
                support: $ssupport,
                doc: $sdoc,
            },)*
            $(KeyInfo {
                name: $cname,
                java_default: $cdefault,
                kind: Kind::$ckind,
                support: $csupport,
                doc: $cdoc,
            },)*
            $(KeyInfo {
                name: $rname,
                java_default: $rdefault,
                kind: Kind::$rkind,
                support: Support::NotYet($why),
                doc: $rdoc,
            },)*
        ];

        /// Every field, with the explicitly set values; a Password key's
        /// value (and a `Password` field) prints as `[hidden]`.
        impl std::fmt::Debug for ProducerConfig {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                struct Explicit<'a>(&'a BTreeMap<&'static str, String>);
                impl std::fmt::Debug for Explicit<'_> {
                    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.debug_map()
                            .entries(self.0.iter().map(|(k, v)| (k, shown(k, v))))
                            .finish()
                    }
                }
                let mut d = f.debug_struct("ProducerConfig");
                d.field("explicit", &Explicit(&self.explicit));
                $(d.field(stringify!($field), &self.$field);)*
                $(d.field(stringify!($xfield), &self.$xfield);)*
                d.finish()
            }
        }

        impl ProducerConfig {
            /// Java's defaults; `bootstrap.servers` must still be set.
            pub fn new() -> Self {
                ProducerConfig {
                    explicit: BTreeMap::new(),
                    $($field: $init,)*
                    $($xfield: $xinit,)*
                }
            }

            /// Every key this release knows, with Java's default and its
            /// support.
            pub fn keys() -> &'static [KeyInfo] {
                KEYS
            }

            /// Sets one property by its Java name.
            ///
            /// # Errors
            ///
            /// [`Error::Config`] for an unknown key or an invalid value (the
            /// error names the key), [`Error::NotSupportedYet`] for a setting
            /// this release does not do.
            pub fn set(&mut self, key: &str, value: &str) -> Result<&mut Self> {
                let v = value.trim();
                let name: &'static str = match key {
                    $($sname => {
                        self.$field = $scodec.parse($sname, v)?;
                        $sname
                    })*
                    $($cname => {
                        let _parsed = $ccodec.parse($cname, v)?;
                        $(if _parsed != $ccodec.parse($cname, $only)? {
                            return Err(partial($cname, v, $csupport));
                        })?
                        $cname
                    })*
                    // A secret is not echoed back in the error.
                    $($rname => return Err(not_yet($rname, shown($rname, v), $why)),)*
                    _ => return Err(Error::config(key, unknown_key_message(key))),
                };
                self.explicit.insert(name, v.to_owned());
                Ok(self)
            }

            /// The value of a key as this configuration holds it: what was
            /// set, or the effective default. `None` for an unknown key.
            pub fn get(&self, key: &str) -> Option<String> {
                if let Some(v) = self.explicit.get(key) {
                    // A Password key shows `[hidden]`, as Java's
                    // `Password.toString` does.
                    return Some(shown(key, v).to_owned());
                }
                Some(match key {
                    $($sname => $scodec.show(&self.$field),)*
                    // The one value this release does, if the row names
                    // one; else Java's default.
                    $($cname => first!($($only,)? $cdefault).to_owned(),)*
                    $($rname => $rdefault.to_owned(),)*
                    _ => return None,
                })
            }

            /// Each stored key's own validator, for the values typed
            /// builders put in place (`set` has run it already).
            pub(super) fn check_each_key(&self) -> Result<()> {
                $($scodec.check($sname, &self.$field)?;)*
                Ok(())
            }

            $($(
                $(#[doc = $bdoc])*
                #[must_use]
                pub fn $method(mut self, value: $ty) -> Self {
                    self.$field = value;
                    let shown = $scodec.show(&self.$field);
                    self.mark($sname, shown)
                }
            )?)*

            /// The field's value, by key, as `Debug` prints it (tests).
            #[cfg(test)]
            pub(super) fn debug_value(&self, key: &str) -> Option<String> {
                match key {
                    $($sname => Some(format!("{:?}", self.$field)),)*
                    _ => None,
                }
            }

            /// Texts the key's codec takes and refuses (tests).
            #[cfg(test)]
            pub(super) fn samples(key: &str) -> Option<(Vec<String>, Vec<String>)> {
                match key {
                    $($sname => Some(($scodec.samples(), $scodec.bad_samples())),)*
                    $($cname => Some(($ccodec.samples(), $ccodec.bad_samples())),)*
                    _ => None,
                }
            }

            /// Every generated builder: its key, its doc, and a call that
            /// copies the key's value from another configuration (tests).
            #[cfg(test)]
            #[allow(clippy::type_complexity)]
            pub(super) const BUILDERS: &'static [(
                &'static str,
                &'static str,
                fn(ProducerConfig, &ProducerConfig) -> ProducerConfig,
            )] = &[$($((
                $sname,
                concat!($($bdoc, "\n"),*),
                |c, from| c.$method(from.$field.clone()),
            ),)?)*];
        }
    };
}

/// The first of its arguments (a checked row's `only` value, else its
/// Java default).
macro_rules! first {
    ($first:expr $(, $rest:expr)*) => {
        $first
    };
}

pub(super) use {config_keys, first};
