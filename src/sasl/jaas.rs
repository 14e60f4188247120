//! `sasl.jaas.config` as Java users write it: one login module, its
//! control flag, `name=value` options, and a trailing `;`:
//!
//! ```text
//! org.apache.kafka.common.security.plain.PlainLoginModule required
//!     username="alice" password="alice-secret";
//! ```
//!
//! The grammar is what Java's `JaasConfig` accepts (a `StreamTokenizer`):
//! values in double or single quotes with backslash escapes (`\"`, `\\`,
//! `\n`, `\t`, ...), `//` and `/* */` comments. Unquoted values made of
//! letters, digits and `._-$` are taken too (Java refuses unquoted
//! numbers; nothing is lost by accepting them). A client's configuration
//! holds exactly one login module, as in Java.
//!
//! Errors name `sasl.jaas.config` and say what is wrong, never quoting a
//! value (it may be a password).

use std::collections::BTreeMap;

use crate::error::{Error, Result};

const KEY: &str = "sasl.jaas.config";

/// One login module with its options.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct JaasEntry {
    /// The login module's class name.
    pub(crate) module: String,
    /// Its options, by name.
    pub(crate) options: BTreeMap<String, String>,
}

impl std::fmt::Debug for JaasEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Option names only: values may be secrets.
        f.debug_struct("JaasEntry")
            .field("module", &self.module)
            .field("options", &self.options.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl JaasEntry {
    /// The option `name`, if set.
    pub(crate) fn option(&self, name: &str) -> Option<&str> {
        self.options.get(name).map(String::as_str)
    }

    /// The last part of the module's class name (`PlainLoginModule`).
    pub(crate) fn short_name(&self) -> &str {
        self.module.rsplit('.').next().unwrap_or(&self.module)
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Char(char),
}

fn err(message: impl Into<String>) -> Error {
    Error::config(KEY, message.into())
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '$')
}

fn tokens(text: &str) -> Result<Vec<Token>> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' || c == '\r' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                let mut closed = false;
                for c in chars.by_ref() {
                    if prev == '*' && c == '/' {
                        closed = true;
                        break;
                    }
                    prev = c;
                }
                if !closed {
                    return Err(err("a /* comment is not closed"));
                }
            }
            '"' | '\'' => {
                let quote = c;
                let mut s = String::new();
                let mut closed = false;
                while let Some(c) = chars.next() {
                    match c {
                        c if c == quote => {
                            closed = true;
                            break;
                        }
                        '\\' => match chars.next() {
                            Some('n') => s.push('\n'),
                            Some('t') => s.push('\t'),
                            Some('r') => s.push('\r'),
                            Some('b') => s.push('\u{8}'),
                            Some('f') => s.push('\u{c}'),
                            Some(other) => s.push(other),
                            None => break,
                        },
                        c => s.push(c),
                    }
                }
                if !closed {
                    return Err(err(format!(
                        "a quoted value is not closed (missing {quote})"
                    )));
                }
                out.push(Token::Quoted(s));
            }
            c if is_word_char(c) => {
                let mut w = String::from(c);
                while let Some(&n) = chars.peek() {
                    if !is_word_char(n) {
                        break;
                    }
                    w.push(n);
                    chars.next();
                }
                out.push(Token::Word(w));
            }
            c => out.push(Token::Char(c)),
        }
    }
    Ok(out)
}

/// Parses the text of `sasl.jaas.config` into its one login module.
///
/// # Errors
///
/// [`Error::Config`] naming `sasl.jaas.config`: no login module or more
/// than one, a missing or unknown control flag, an option without `=` or
/// value, an unclosed quote, a missing `;`.
pub(crate) fn parse(text: &str) -> Result<JaasEntry> {
    let toks = tokens(text)?;
    let mut it = toks.into_iter().peekable();
    let mut entries = Vec::new();
    while let Some(t) = it.next() {
        let Token::Word(word) = t else {
            return Err(err("expected a login module class name (such as \
                 org.apache.kafka.common.security.plain.PlainLoginModule)"));
        };
        // Named in errors only if it looks like a class name: a stray
        // word may be a secret pasted in the wrong place.
        let module_name = if word.contains('.') {
            word.clone()
        } else {
            "(a login module class name)".to_owned()
        };
        let module = word;
        let flag = match it.next() {
            Some(Token::Word(f)) => f,
            _ => {
                return Err(err(format!(
                    "login module {module_name} needs a control flag \
                     (required, requisite, sufficient or optional)"
                )))
            }
        };
        if !["required", "requisite", "sufficient", "optional"]
            .iter()
            .any(|f| f.eq_ignore_ascii_case(&flag))
        {
            return Err(err(format!(
                "the word after login module {module_name} is not a control flag \
                 (required, requisite, sufficient or optional)"
            )));
        }
        let mut options = BTreeMap::new();
        loop {
            match it.next() {
                Some(Token::Char(';')) => break,
                Some(Token::Word(name)) => {
                    if it.next() != Some(Token::Char('=')) {
                        return Err(err(format!("option {name} of {module_name} has no `=value`")));
                    }
                    let value = match it.next() {
                        Some(Token::Quoted(v) | Token::Word(v)) => v,
                        _ => return Err(err(format!("option {name} of {module_name} has no value"))),
                    };
                    options.insert(name, value);
                }
                Some(_) => {
                    return Err(err(format!(
                        "unexpected text in the options of {module_name}: expected name=\"value\" or `;`"
                    )))
                }
                None => {
                    return Err(err(format!(
                        "the options of {module_name} do not end with `;`"
                    )))
                }
            }
        }
        entries.push(JaasEntry { module, options });
    }
    match entries.len() {
        1 => Ok(entries.pop().expect("one")),
        0 => Err(err("no login module is given")),
        n => Err(err(format!(
            "{n} login modules are given; a client takes exactly one"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_style_configs_parse() {
        let e = parse(
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="alice" password="alice-secret";"#,
        )
        .unwrap();
        assert_eq!(
            e.module,
            "org.apache.kafka.common.security.plain.PlainLoginModule"
        );
        assert_eq!(e.short_name(), "PlainLoginModule");
        assert_eq!(e.option("username"), Some("alice"));
        assert_eq!(e.option("password"), Some("alice-secret"));

        // several lines, escapes, single quotes, comments, unquoted words
        let e = parse(
            "org.apache.kafka.common.security.scram.ScramLoginModule REQUIRED\n  \
             // the user\n  username='bob' /* and */ password=\"p\\\"a\\\\ss;w=rd\"\n  \
             tokenauth=false ;  ",
        )
        .unwrap();
        assert_eq!(e.option("username"), Some("bob"));
        assert_eq!(e.option("password"), Some("p\"a\\ss;w=rd"));
        assert_eq!(e.option("tokenauth"), Some("false"));

        let e = parse(
            r#"org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="producer" unsecuredLoginLifetimeSeconds="60";"#,
        )
        .unwrap();
        assert_eq!(e.option("unsecuredLoginStringClaim_sub"), Some("producer"));
        assert_eq!(e.option("unsecuredLoginLifetimeSeconds"), Some("60"));
        // no options at all
        assert!(parse("a.B optional;").unwrap().options.is_empty());
    }

    #[test]
    fn mistakes_are_named_without_quoting_values() {
        for (text, says) in [
            ("", "no login module"),
            ("a.B required username=\"x\"", "do not end with `;`"),
            ("a.B username=\"x\";", "is not a control flag"),
            ("s3cret;", "(a login module class name)"),
            ("a.B", "needs a control flag"),
            ("a.B required username;", "has no `=value`"),
            ("a.B required username=;", "has no value"),
            ("a.B required password=\"hunter2;", "not closed"),
            ("a.B required; c.D required;", "2 login modules"),
            ("a.B required /* x", "comment is not closed"),
            ("\"a.B\" required;", "expected a login module"),
        ] {
            let e = parse(text).unwrap_err();
            let shown = e.to_string();
            assert!(
                matches!(&e, Error::Config { key, .. } if key == KEY),
                "{text}: {shown}"
            );
            assert!(shown.contains(says), "{text}: {shown}");
            assert!(
                !shown.contains("hunter2") && !shown.contains("s3cret"),
                "{shown}"
            );
        }
        // Debug shows option names only
        let e = parse("a.B required password=\"hunter2\";").unwrap();
        assert!(!format!("{e:?}").contains("hunter2"));
    }
}
