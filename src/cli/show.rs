//! How the CLI's human renderings (`trace`, `metrics`) show the API's JSON: one rule for a
//! value as text, for a list's items and for a run of `key=value` fields.
//!
//! WHY a module: each rendering had its own copy of these; a value now reads the same in every
//! command's output.
use serde_json::Value;

/// A value as text: `-` for null (absent), a string bare, anything else as JSON.
pub(crate) fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

/// The items of a JSON list (none when `v` is not a list).
pub(crate) fn items(v: &Value) -> impl Iterator<Item = &Value> {
    v.as_array().into_iter().flatten()
}

/// `key=value` for each of `keys` of the object `t`, in that order, space-separated.
pub(crate) fn fields(t: &Value, keys: &[&str]) -> String {
    let kv: Vec<String> = keys.iter().map(|k| format!("{k}={}", s(&t[*k]))).collect();
    kv.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_lists_and_fields_read_as_text() {
        let t = json!({"a": "x", "b": 3, "c": null, "l": [1, "two"]});
        assert_eq!(s(&t["a"]), "x");
        assert_eq!(s(&t["b"]), "3");
        assert_eq!(s(&t["c"]), "-");
        assert_eq!(s(&t["missing"]), "-");
        assert_eq!(items(&t["l"]).map(s).collect::<Vec<_>>(), ["1", "two"]);
        assert_eq!(items(&t["a"]).count(), 0);
        assert_eq!(fields(&t, &["b", "a", "c"]), "b=3 a=x c=-");
    }
}
