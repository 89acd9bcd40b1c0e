//! Structured queries over materialized JSON, compiled to one SQL statement.
//! Field paths are validated and inlined as literals (so expression indexes
//! match); values are always bound parameters.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::StoreError;

/// Longest field path accepted.
const MAX_PATH_LEN: usize = 256;
/// Most filters in one query.
const MAX_FILTERS: usize = 32;

/// A query over one collection of one space.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Query {
    /// The space; `None` means the node's default space.
    pub space: Option<String>,
    /// The collection.
    pub collection: String,
    /// All must hold.
    pub filters: Vec<Filter>,
    /// Sort order; by document id when `None`.
    pub order: Option<Order>,
    /// At most this many rows.
    pub limit: Option<u32>,
    /// Only documents whose id sorts after this one (keyset paging by id;
    /// not combinable with `order`).
    pub after: Option<String>,
}

impl Query {
    /// All live documents of a collection, in the default space.
    pub fn new(collection: impl Into<String>) -> Self {
        Self {
            space: None,
            collection: collection.into(),
            filters: Vec::new(),
            order: None,
            limit: None,
            after: None,
        }
    }

    /// Restricts to a space.
    pub fn space(mut self, space: impl Into<String>) -> Self {
        self.space = Some(space.into());
        self
    }

    /// Adds a filter `field op value`; `field` is a dotted path (`a.b.0`).
    pub fn filter(
        mut self,
        field: impl Into<String>,
        op: FilterOp,
        value: impl Into<Value>,
    ) -> Self {
        self.filters.push(Filter {
            field: field.into(),
            op,
            value: value.into(),
        });
        self
    }

    /// Shorthand for an equality filter.
    pub fn eq(self, field: impl Into<String>, value: impl Into<Value>) -> Self {
        self.filter(field, FilterOp::Eq, value)
    }

    /// Sorts by a field.
    pub fn order_by(mut self, field: impl Into<String>, descending: bool) -> Self {
        self.order = Some(Order {
            field: field.into(),
            descending,
        });
        self
    }

    /// Pages by id: only documents whose id sorts after `id`.
    pub fn after(mut self, id: impl Into<String>) -> Self {
        self.after = Some(id.into());
        self
    }

    /// Caps the number of rows.
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }
}

/// One condition on a JSON field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Filter {
    /// Dotted path into the document.
    pub field: String,
    /// Comparison.
    pub op: FilterOp,
    /// A JSON scalar (string, number, boolean or null).
    pub value: Value,
}

/// Comparison operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FilterOp {
    /// `=` (with `null`: field absent or null)
    Eq,
    /// `!=` (with `null`: field present and not null)
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// Sort order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// Dotted path to sort by.
    pub field: String,
    /// Largest first.
    pub descending: bool,
}

/// One result row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueryRow {
    /// The document id.
    pub id: String,
    /// The document.
    pub json: Value,
}

/// A bound parameter of a compiled query.
#[derive(Debug, PartialEq)]
pub(super) enum Param {
    Text(String),
    Int(i64),
    Real(f64),
}

/// Renders a dotted field path as a SQLite JSON path literal, e.g.
/// `a.b-c.0` -> `'$."a"."b-c"[0]'`.
pub(crate) fn path_literal(field: &str) -> Result<String, StoreError> {
    let bad = |why: &str| StoreError::InvalidQuery(format!("field path {field:?} {why}"));
    if field.is_empty() || field.len() > MAX_PATH_LEN {
        return Err(bad("must be 1 to 256 bytes"));
    }
    let mut out = String::from("'$");
    for segment in field.split('.') {
        if segment.is_empty() {
            return Err(bad("has an empty segment"));
        }
        if segment.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{segment}]"));
        } else if segment
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | ' ' | '$' | '@'))
        {
            out.push_str(&format!(".\"{segment}\""));
        } else {
            return Err(bad(
                "may only use letters, digits, '_', '-', ' ', '$', '@' between dots",
            ));
        }
    }
    out.push('\'');
    Ok(out)
}

/// Compiles a query to SQL and its parameters.
pub(super) fn compile(q: &Query, space: &str) -> Result<(String, Vec<Param>), StoreError> {
    if q.filters.len() > MAX_FILTERS {
        return Err(StoreError::InvalidQuery(format!(
            "at most {MAX_FILTERS} filters"
        )));
    }
    let mut sql = String::from(
        "SELECT id, json FROM docs WHERE space = ? AND collection = ? AND deleted = 0",
    );
    let mut params = vec![
        Param::Text(space.to_owned()),
        Param::Text(q.collection.clone()),
    ];
    for f in &q.filters {
        let path = path_literal(&f.field)?;
        let expr = format!("json_extract(json, {path})");
        let op = match f.op {
            FilterOp::Eq => "=",
            FilterOp::Ne => "!=",
            FilterOp::Lt => "<",
            FilterOp::Le => "<=",
            FilterOp::Gt => ">",
            FilterOp::Ge => ">=",
        };
        match &f.value {
            Value::Null => match f.op {
                FilterOp::Eq => sql.push_str(&format!(" AND {expr} IS NULL")),
                FilterOp::Ne => sql.push_str(&format!(" AND {expr} IS NOT NULL")),
                _ => {
                    return Err(StoreError::InvalidQuery(format!(
                        "field {:?}: null can only be compared with eq or ne",
                        f.field
                    )));
                }
            },
            Value::Bool(b) => {
                // json_extract yields 1/0 for JSON booleans.
                sql.push_str(&format!(" AND {expr} {op} ?"));
                params.push(Param::Int(i64::from(*b)));
            }
            Value::Number(n) => {
                sql.push_str(&format!(" AND {expr} {op} ?"));
                params.push(match n.as_i64() {
                    Some(i) => Param::Int(i),
                    None => Param::Real(n.as_f64().unwrap_or(f64::NAN)),
                });
            }
            Value::String(s) => {
                sql.push_str(&format!(" AND {expr} {op} ?"));
                params.push(Param::Text(s.clone()));
            }
            Value::Array(_) | Value::Object(_) => {
                return Err(StoreError::InvalidQuery(format!(
                    "field {:?}: filters compare scalars (string, number, boolean, null)",
                    f.field
                )));
            }
        }
    }
    if let Some(after) = &q.after {
        // Paging by id only: a cursor into a field order would have to
        // carry the field's value too (and cope with documents moving).
        if q.order.is_some() {
            return Err(StoreError::InvalidQuery(
                "`after` pages by document id and cannot be combined with an order; \
                 drop the order, or narrow the listing with filters"
                    .into(),
            ));
        }
        sql.push_str(" AND id > ?");
        params.push(Param::Text(after.clone()));
    }
    match &q.order {
        Some(o) => {
            let dir = if o.descending { "DESC" } else { "ASC" };
            sql.push_str(&format!(
                " ORDER BY json_extract(json, {}) {dir}, id {dir}",
                path_literal(&o.field)?
            ));
        }
        None => sql.push_str(" ORDER BY id"),
    }
    if let Some(limit) = q.limit {
        sql.push_str(&format!(" LIMIT {limit}"));
    }
    Ok((sql, params))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_quoted_and_validated() {
        assert_eq!(path_literal("a.b-c.0").unwrap(), "'$.\"a\".\"b-c\"[0]'");
        for bad in ["", "a..b", "a'b", "a\"b", "a)b", ".a"] {
            assert!(path_literal(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn values_are_parameters() {
        let q = Query::new("notes")
            .eq("title", "x'); DROP TABLE docs; --")
            .filter("n", FilterOp::Ge, 2)
            .eq("done", true)
            .eq("gone", Value::Null)
            .order_by("n", true)
            .limit(5);
        let (sql, params) = compile(&q, "s").unwrap();
        assert!(!sql.contains("DROP"));
        assert!(sql.contains("IS NULL") && sql.ends_with("LIMIT 5"));
        assert_eq!(params.len(), 5);
        assert_eq!(params[4], Param::Int(1));
    }

    #[test]
    fn after_pages_by_id_and_refuses_an_order() {
        let (sql, params) = compile(&Query::new("c").eq("a", 1).after("x").limit(3), "s").unwrap();
        assert!(
            sql.contains("AND id > ?") && sql.contains("ORDER BY id"),
            "{sql}"
        );
        assert_eq!(params.last(), Some(&Param::Text("x".into())));
        assert!(compile(&Query::new("c").after("x").order_by("n", false), "s").is_err());
    }

    #[test]
    fn unsupported_filters_are_errors() {
        assert!(compile(&Query::new("c").eq("a", serde_json::json!([1])), "s").is_err());
        assert!(compile(&Query::new("c").filter("a", FilterOp::Lt, Value::Null), "s").is_err());
    }
}
