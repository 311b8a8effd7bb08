//! Converting raw Redis replies into the shapes the core uses.

use redis::Value;

use crate::errors::{CoreError, CoreResult};

fn text(v: &Value) -> CoreResult<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone())
            .map_err(|_| CoreError::Data("a hash value is not valid UTF-8".to_string())),
        Value::SimpleString(s) => Ok(s.clone()),
        Value::Int(i) => Ok(i.to_string()),
        Value::Okay => Ok("OK".to_string()),
        other => Err(CoreError::Data(format!("expected a string, got {other:?}"))),
    }
}

/// A possibly-nil string reply.
pub fn opt_string(v: &Value) -> CoreResult<Option<String>> {
    match v {
        Value::Nil => Ok(None),
        other => text(other).map(Some),
    }
}

/// An integer reply.
pub fn int(v: &Value) -> CoreResult<i64> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::Boolean(b) => Ok(i64::from(*b)),
        other => Err(CoreError::Data(format!(
            "expected an integer, got {other:?}"
        ))),
    }
}

/// An array of possibly-nil strings (HMGET).
pub fn opt_strings(v: &Value) -> CoreResult<Vec<Option<String>>> {
    match v {
        Value::Array(items) => items.iter().map(opt_string).collect(),
        other => Err(CoreError::Data(format!("expected an array, got {other:?}"))),
    }
}

/// HGETALL reply as ordered pairs (RESP2 flat array or RESP3 map).
pub fn pairs(v: &Value) -> CoreResult<Vec<(String, String)>> {
    match v {
        Value::Array(items) => {
            if items.len() % 2 != 0 {
                return Err(CoreError::Data("odd-length HGETALL reply".to_string()));
            }
            items
                .chunks_exact(2)
                .map(|kv| Ok((text(&kv[0])?, text(&kv[1])?)))
                .collect()
        }
        Value::Map(items) => items
            .iter()
            .map(|(k, v)| Ok((text(k)?, text(v)?)))
            .collect(),
        other => Err(CoreError::Data(format!("expected a hash, got {other:?}"))),
    }
}

/// Take reply `i` of an EXEC result.
pub fn nth(replies: &[Value], i: usize) -> CoreResult<&Value> {
    replies
        .get(i)
        .ok_or_else(|| CoreError::Data(format!("transaction reply has no item {i}")))
}
