//! Read-only connections: point reads, structured queries and the read-only
//! SQL entry point. These never block the writer (WAL readers run
//! concurrently with it).

use serde_json::{Map, Value};
use sqlx::sqlite::{SqlitePool, SqliteRow};
use sqlx::{AssertSqlSafe, Column, Row, TypeInfo, ValueRef};

use super::query::{Param, Query, QueryRow, compile};
use super::{StoreError, sql_err};
use crate::error::Error;
use crate::key::DocKey;

/// A cheap, cloneable handle to the read pool.
#[derive(Clone, Debug)]
pub struct Reader {
    pool: SqlitePool,
}

impl Reader {
    pub(super) fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }

    /// Closes every read connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The materialized JSON text of a live document.
    pub async fn get(&self, key: &DocKey) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "SELECT json FROM docs WHERE space = ? AND collection = ? AND id = ? AND deleted = 0",
        )
        .bind(key.space())
        .bind(key.collection())
        .bind(key.id())
        .fetch_optional(&self.pool)
        .await
        .map_err(sql_err("reading a document"))?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Runs a structured query in `space`.
    pub async fn query(&self, q: &Query, space: &str) -> Result<Vec<QueryRow>, Error> {
        let (sql, params) = compile(q, space)?;
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for p in params {
            query = match p {
                Param::Text(s) => query.bind(s),
                Param::Int(i) => query.bind(i),
                Param::Real(f) => query.bind(f),
            };
        }
        let rows = query
            .fetch_all(&self.pool)
            .await
            .map_err(sql_err("running a query"))?;
        rows.iter()
            .map(|r| {
                let id: String = r.get(0);
                let text: &str = r.get(1);
                let json = serde_json::from_str(text).map_err(|e| {
                    StoreError::Damaged(format!("stored JSON of {id:?} does not parse: {e}"))
                })?;
                Ok(QueryRow { id, json })
            })
            .collect()
    }

    /// Runs a read-only statement; each row becomes a JSON object keyed by
    /// column name.
    pub async fn sql(&self, statement: &str) -> Result<Vec<Map<String, Value>>, Error> {
        use futures::TryStreamExt;
        check_read_only(statement)?;
        let query = AssertSqlSafe(statement.to_owned());
        let mut rows = sqlx::query(query).fetch(&self.pool);
        let mut out = Vec::new();
        // Rows are streamed and capped, so a runaway statement (a recursive
        // CTE without end) stops at the cap instead of exhausting memory.
        while let Some(row) = rows
            .try_next()
            .await
            .map_err(|e| Error::Sql(sql_message(&e)))?
        {
            if out.len() == MAX_SQL_ROWS {
                return Err(Error::Sql(format!(
                    "the statement returns more than {MAX_SQL_ROWS} rows; add a LIMIT or aggregate"
                )));
            }
            out.push(row_to_json(&row)?);
        }
        Ok(out)
    }
}

/// Most rows one `sql()` call returns.
pub const MAX_SQL_ROWS: usize = 100_000;

/// First keyword must start a query. The connection itself is read-only
/// (opened with SQLITE_OPEN_READONLY and `query_only`), so this check only
/// gives a clearer message than SQLite's "attempt to write a readonly database".
fn check_read_only(statement: &str) -> Result<(), Error> {
    let word = statement
        .trim_start()
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    match word.as_str() {
        "SELECT" | "WITH" | "VALUES" | "EXPLAIN" => Ok(()),
        "" => Err(Error::Sql("empty statement".into())),
        other => Err(Error::Sql(format!(
            "{other} is not allowed: sql() is read-only and runs SELECT, WITH, VALUES or EXPLAIN; \
             change documents with put, patch or delete"
        ))),
    }
}

fn sql_message(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => db.message().to_owned(),
        other => other.to_string(),
    }
}

fn row_to_json(row: &SqliteRow) -> Result<Map<String, Value>, Error> {
    let mut out = Map::new();
    for (i, col) in row.columns().iter().enumerate() {
        let raw = row.try_get_raw(i).map_err(|e| Error::Sql(e.to_string()))?;
        let value = if raw.is_null() {
            Value::Null
        } else {
            let kind = raw.type_info().name().to_owned();
            let decode = |e: sqlx::Error| Error::Sql(e.to_string());
            match kind.as_str() {
                "INTEGER" | "BOOLEAN" => {
                    Value::from(row.try_get_unchecked::<i64, _>(i).map_err(decode)?)
                }
                "REAL" => Value::from(row.try_get_unchecked::<f64, _>(i).map_err(decode)?),
                "BLOB" => Value::from(row.try_get_unchecked::<Vec<u8>, _>(i).map_err(decode)?),
                _ => Value::from(row.try_get_unchecked::<String, _>(i).map_err(decode)?),
            }
        };
        out.insert(col.name().to_owned(), value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_queries_pass_the_keyword_check() {
        for ok in [
            "SELECT 1",
            "  with x as (select 1) select * from x",
            "VALUES (1)",
            "explain select 1",
        ] {
            assert!(check_read_only(ok).is_ok(), "{ok}");
        }
        for bad in [
            "DELETE FROM docs",
            "PRAGMA query_only=0",
            "ATTACH 'x' AS y",
            "",
            "  ;",
        ] {
            assert!(check_read_only(bad).is_err(), "{bad}");
        }
    }
}
