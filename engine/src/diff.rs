//! Where two JSON values first differ, for messages that name the field.

use serde_json::Value;

/// The path of the first difference between `a` and `b` (keys in order,
/// `field.sub`, list items as `[i]`, an item with a `control_id` named by
/// it: `controls[3] (CC6.7).status`), and the two values there (`None`
/// where one side has nothing). An empty path when they are equal.
pub(crate) fn first_difference<'v>(
    a: &'v Value,
    b: &'v Value,
) -> (String, Option<&'v Value>, Option<&'v Value>) {
    let mut at = String::new();
    let (x, y) = walk(a, b, &mut at);
    (at, x, y)
}

fn walk<'v>(a: &'v Value, b: &'v Value, at: &mut String) -> (Option<&'v Value>, Option<&'v Value>) {
    let step = |l: Option<&'v Value>, r: Option<&'v Value>, at: &mut String| match (l, r) {
        (Some(l), Some(r)) => walk(l, r, at),
        _ => (l, r),
    };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let (l, r) = (x.get(k), y.get(k));
                if l != r {
                    if !at.is_empty() {
                        at.push('.');
                    }
                    at.push_str(k);
                    return step(l, r, at);
                }
            }
            (Some(a), Some(b))
        }
        (Value::Array(x), Value::Array(y)) => {
            for i in 0..x.len().max(y.len()) {
                let (l, r) = (x.get(i), y.get(i));
                if l != r {
                    at.push_str(&format!("[{i}]"));
                    if let Some(id) = l
                        .or(r)
                        .and_then(|v| v.get("control_id"))
                        .and_then(Value::as_str)
                    {
                        at.push_str(&format!(" ({id})"));
                    }
                    return step(l, r, at);
                }
            }
            (Some(a), Some(b))
        }
        _ => (Some(a), Some(b)),
    }
}
