//! A small SQL text builder: fragments and bound parameters travel together, so a value
//! can only ever reach the database as a parameter.

/// The SQL dialects scimd speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// The SQL function that folds case as `scimd_proto::value::fold_case` does (SQLite's
    /// `lower()` folds ASCII only, so scimd registers `scim_fold` on its connections).
    pub fn fold_function(self) -> &'static str {
        match self {
            Dialect::Sqlite => "scim_fold",
            Dialect::Postgres => "lower",
        }
    }
}

/// A bound parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

/// SQL text with its parameters in order.
#[derive(Debug, Clone)]
pub struct Sql {
    pub dialect: Dialect,
    pub text: String,
    pub binds: Vec<Bind>,
}

impl Sql {
    pub fn new(dialect: Dialect) -> Sql {
        Sql { dialect, text: String::with_capacity(256), binds: Vec::new() }
    }

    /// Appends trusted SQL text (never a client value).
    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder bound to `value`.
    pub fn bind(&mut self, value: Bind) -> &mut Self {
        self.binds.push(value);
        match self.dialect {
            Dialect::Sqlite => self.text.push('?'),
            Dialect::Postgres => {
                self.text.push('$');
                self.text.push_str(&self.binds.len().to_string());
            }
        }
        self
    }

    pub fn bind_text(&mut self, value: impl Into<String>) -> &mut Self {
        self.bind(Bind::Text(value.into()))
    }

    /// Appends another fragment, renumbering its placeholders.
    pub fn append(&mut self, other: Sql) -> &mut Self {
        match self.dialect {
            Dialect::Sqlite => {
                self.text.push_str(&other.text);
                self.binds.extend(other.binds);
            }
            Dialect::Postgres => {
                let offset = self.binds.len();
                self.text.push_str(&renumber(&other.text, offset));
                self.binds.extend(other.binds);
            }
        }
        self
    }

    /// A new builder of the same dialect.
    pub fn fork(&self) -> Sql {
        Sql::new(self.dialect)
    }
}

/// Shifts `$n` placeholders by `offset` (PostgreSQL only; our fragments never contain `$`
/// inside literals because values are always bound).
fn renumber(text: &str, offset: usize) -> String {
    if offset == 0 {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    let mut chars = text.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if c == '$' && chars.peek().is_some_and(|(_, d)| d.is_ascii_digit()) {
            let mut n = 0usize;
            while let Some((_, d)) = chars.peek().copied().filter(|(_, d)| d.is_ascii_digit()) {
                n = n * 10 + d.to_digit(10).unwrap_or(0) as usize;
                chars.next();
            }
            out.push('$');
            out.push_str(&(n + offset).to_string());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_per_dialect() {
        let mut a = Sql::new(Dialect::Postgres);
        a.push("a = ").bind_text("x");
        let mut b = a.fork();
        b.push(" AND b = ").bind(Bind::Int(1)).push(" AND c = ").bind(Bind::Int(2));
        a.append(b);
        assert_eq!(a.text, "a = $1 AND b = $2 AND c = $3");
        assert_eq!(a.binds.len(), 3);
        let mut s = Sql::new(Dialect::Sqlite);
        s.push("x = ").bind_text("y");
        assert_eq!(s.text, "x = ?");
    }
}
