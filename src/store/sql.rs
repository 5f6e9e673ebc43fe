//! The small SQL surface both backends offer: run a statement, read rows of plain values.
//!
//! The rules of the store (what a command does, which state it expects, how rows become
//! domain types) are written once in [`super::rows`] against [`Db`]; SQLite and PostgreSQL
//! each implement it. Statements use `?1`-style parameters; the PostgreSQL side rewrites them
//! to `$1`. Only integers, reals and text cross this line, so the same SQL runs on both.

use rusqlite::types::ValueRef;

use super::StoreError;

/// One SQL value: a parameter or a column.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    /// A nullable integer parameter (typed, so PostgreSQL knows the column type of a NULL).
    OptInt(Option<i64>),
    /// A nullable text parameter.
    OptText(Option<String>),
}

impl From<i64> for Val {
    fn from(v: i64) -> Self {
        Val::Int(v)
    }
}
impl From<u32> for Val {
    fn from(v: u32) -> Self {
        Val::Int(i64::from(v))
    }
}
impl From<f64> for Val {
    fn from(v: f64) -> Self {
        Val::Real(v)
    }
}
impl From<bool> for Val {
    fn from(v: bool) -> Self {
        Val::Int(i64::from(v))
    }
}
impl From<&str> for Val {
    fn from(v: &str) -> Self {
        Val::Text(v.to_owned())
    }
}
impl From<String> for Val {
    fn from(v: String) -> Self {
        Val::Text(v)
    }
}
impl From<&String> for Val {
    fn from(v: &String) -> Self {
        Val::Text(v.clone())
    }
}
impl From<Option<i64>> for Val {
    fn from(v: Option<i64>) -> Self {
        Val::OptInt(v)
    }
}
impl From<Option<&str>> for Val {
    fn from(v: Option<&str>) -> Self {
        Val::OptText(v.map(str::to_owned))
    }
}
impl From<Option<String>> for Val {
    fn from(v: Option<String>) -> Self {
        Val::OptText(v)
    }
}

/// Parameters for a statement: `vals![a, b, c]`.
macro_rules! vals {
    ($($v:expr),* $(,)?) => { &[$($crate::store::sql::Val::from($v)),*] };
}
pub(crate) use vals;

/// One result row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row(pub Vec<Val>);

impl Row {
    fn at(&self, i: usize) -> Result<&Val, StoreError> {
        self.0.get(i).ok_or_else(|| StoreError::Corrupt {
            table: "query",
            reason: format!("no column {i}"),
        })
    }

    pub fn int(&self, i: usize) -> Result<i64, StoreError> {
        match self.at(i)? {
            Val::Int(v) | Val::OptInt(Some(v)) => Ok(*v),
            other => Err(type_error("an integer", other)),
        }
    }

    pub fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        match self.at(i)? {
            Val::Null | Val::OptInt(None) => Ok(None),
            _ => self.int(i).map(Some),
        }
    }

    pub fn real(&self, i: usize) -> Result<f64, StoreError> {
        match self.at(i)? {
            Val::Real(v) => Ok(*v),
            Val::Int(v) => Ok(*v as f64),
            other => Err(type_error("a number", other)),
        }
    }

    pub fn text(&self, i: usize) -> Result<String, StoreError> {
        match self.at(i)? {
            Val::Text(v) | Val::OptText(Some(v)) => Ok(v.clone()),
            other => Err(type_error("text", other)),
        }
    }

    pub fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        match self.at(i)? {
            Val::Null | Val::OptText(None) => Ok(None),
            _ => self.text(i).map(Some),
        }
    }
}

fn type_error(wanted: &str, got: &Val) -> StoreError {
    StoreError::Corrupt {
        table: "query",
        reason: format!("expected {wanted}, found {got:?}"),
    }
}

/// A connection or transaction that runs our SQL.
pub trait Db {
    /// Run a statement; returns the number of rows it changed.
    fn exec(&mut self, sql: &str, params: &[Val]) -> Result<u64, StoreError>;
    /// Run a query and read every row.
    fn rows(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Row>, StoreError>;

    /// The first row, if any.
    fn row(&mut self, sql: &str, params: &[Val]) -> Result<Option<Row>, StoreError> {
        Ok(self.rows(sql, params)?.into_iter().next())
    }

    /// The integer in the first column of the first row (`count(*)` and the like).
    fn count(&mut self, sql: &str, params: &[Val]) -> Result<i64, StoreError> {
        match self.row(sql, params)? {
            Some(row) => row.int(0),
            None => Ok(0),
        }
    }
}

/// SQLite through rusqlite: a connection or (by deref) a transaction.
pub struct Lite<'a>(pub &'a rusqlite::Connection);

impl Db for Lite<'_> {
    fn exec(&mut self, sql: &str, params: &[Val]) -> Result<u64, StoreError> {
        let mut stmt = self.0.prepare_cached(sql)?;
        Ok(stmt.execute(rusqlite::params_from_iter(params.iter().map(lite_param)))? as u64)
    }

    fn rows(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Row>, StoreError> {
        let mut stmt = self.0.prepare_cached(sql)?;
        let n = stmt.column_count();
        let mut rows = stmt.query(rusqlite::params_from_iter(params.iter().map(lite_param)))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let mut vals = Vec::with_capacity(n);
            for i in 0..n {
                vals.push(match r.get_ref(i)? {
                    ValueRef::Null => Val::Null,
                    ValueRef::Integer(v) => Val::Int(v),
                    ValueRef::Real(v) => Val::Real(v),
                    ValueRef::Text(t) => Val::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(_) => {
                        return Err(StoreError::Corrupt {
                            table: "query",
                            reason: "unexpected blob".into(),
                        });
                    }
                });
            }
            out.push(Row(vals));
        }
        Ok(out)
    }
}

fn lite_param(v: &Val) -> rusqlite::types::Value {
    use rusqlite::types::Value;
    match v {
        Val::Null | Val::OptInt(None) | Val::OptText(None) => Value::Null,
        Val::Int(i) | Val::OptInt(Some(i)) => Value::Integer(*i),
        Val::Real(r) => Value::Real(*r),
        Val::Text(t) | Val::OptText(Some(t)) => Value::Text(t.clone()),
    }
}

/// `?1`-style parameters to PostgreSQL's `$1` (our statements have no `?` in literals).
pub fn dollar_params(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(|d| d.is_ascii_digit()) {
            out.push('$');
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
    fn question_marks_become_dollars_only_before_digits() {
        assert_eq!(
            dollar_params("SELECT a FROM t WHERE x = ?1 AND y = ?12 AND z = '?'"),
            "SELECT a FROM t WHERE x = $1 AND y = $12 AND z = '?'"
        );
    }

    #[test]
    fn sqlite_rows_come_back_typed() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let mut db = Lite(&conn);
        db.exec("CREATE TABLE t (a INTEGER, b REAL, c TEXT)", &[])
            .unwrap();
        let n = db
            .exec(
                "INSERT INTO t VALUES (?1, ?2, ?3)",
                vals![7i64, 1.5, Option::<&str>::None],
            )
            .unwrap();
        assert_eq!(n, 1);
        let row = db.row("SELECT a, b, c FROM t", &[]).unwrap().unwrap();
        assert_eq!(row.int(0).unwrap(), 7);
        assert_eq!(row.real(1).unwrap(), 1.5);
        assert_eq!(row.opt_text(2).unwrap(), None);
        assert!(row.text(0).is_err());
        assert_eq!(db.count("SELECT count(*) FROM t", &[]).unwrap(), 1);
    }
}
