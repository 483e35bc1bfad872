//! An ordered document tree: SOPS computes its MAC over the values in the order the file holds
//! them, so maps keep their entries in document order (a `serde_json::Map` would sort them).

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

/// One value of a YAML, JSON, dotenv or INI document.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// `null` (never encrypted, not part of the MAC).
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A UTF-8 string.
    Str(String),
    /// Decrypted bytes that are not UTF-8 (the content of a binary file).
    Bytes(Vec<u8>),
    /// A list.
    List(Vec<Node>),
    /// A map, in document order.
    Map(Vec<(String, Node)>),
}

impl Node {
    /// The value of `key` in a map.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Removes `key` from a map and returns its value.
    pub fn remove(&mut self, key: &str) -> Option<Node> {
        match self {
            Node::Map(entries) => {
                let index = entries.iter().position(|(k, _)| k == key)?;
                Some(entries.remove(index).1)
            }
            _ => None,
        }
    }

    /// The string, when this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The bytes SOPS hashes into the MAC for a leaf (Go's `sops.ToBytes`); `None` for null
    /// and for lists and maps, which are walked instead.
    pub fn mac_bytes(&self) -> Option<Vec<u8>> {
        match self {
            Node::Str(s) => Some(s.as_bytes().to_vec()),
            Node::Bytes(b) => Some(b.clone()),
            Node::Int(i) => Some(i.to_string().into_bytes()),
            // Go's FormatFloat(f, 'f', -1, 64): shortest round-trip digits, never an exponent;
            // Rust's Display prints the same.
            Node::Float(f) => Some(f.to_string().into_bytes()),
            Node::Bool(true) => Some(b"True".to_vec()),
            Node::Bool(false) => Some(b"False".to_vec()),
            Node::Null | Node::List(_) | Node::Map(_) => None,
        }
    }

    /// A leaf as text, the way SOPS writes values into dotenv and INI files.
    pub fn to_text(&self) -> Option<String> {
        match self {
            Node::Str(s) => Some(s.clone()),
            Node::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
            Node::Int(i) => Some(i.to_string()),
            Node::Float(f) if f.fract() == 0.0 && f.is_finite() => Some(format!("{f:.1}")),
            Node::Float(f) => Some(f.to_string()),
            Node::Bool(b) => Some(b.to_string()),
            Node::Null => Some(String::new()),
            Node::List(_) | Node::Map(_) => None,
        }
    }
}

/// Parses the YAML documents of `text` as SOPS (and kustomize) read them: YAML 1.2 booleans
/// only (`yes`, `n` stay strings), and errors without a snippet of the input.
pub fn parse_yaml(text: &str) -> Result<Vec<Node>, String> {
    let options = serde_saphyr::options! {
        strict_booleans: true,
        with_snippet: false,
    };
    serde_saphyr::from_multiple_with_options::<Node>(text, options).map_err(|e| e.to_string())
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a YAML or JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(i64::try_from(v).map_or(Node::Float(v as f64), Node::Int))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }

    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        Node::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Node::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries: Vec<(String, Node)> = Vec::new();
        while let Some(key) = map.next_key::<Node>()? {
            let key = match key {
                Node::Str(s) => s,
                Node::List(_) | Node::Map(_) | Node::Bytes(_) => {
                    return Err(de::Error::custom("only string keys are supported"));
                }
                leaf => leaf.to_text().unwrap_or_default(),
            };
            let value = map.next_value::<Node>()?;
            entries.push((key, value));
        }
        Ok(Node::Map(entries))
    }
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Null => serializer.serialize_unit(),
            Node::Bool(b) => serializer.serialize_bool(*b),
            Node::Int(i) => serializer.serialize_i64(*i),
            Node::Float(f) => serializer.serialize_f64(*f),
            Node::Str(s) => serializer.serialize_str(s),
            Node::Bytes(_) => Err(serde::ser::Error::custom(
                "a decrypted value is not UTF-8 text",
            )),
            Node::List(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Node::Map(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_keep_document_order_and_leaves_hash_like_sops() {
        let node = parse_yaml("b: 1\na: [x, 2.5, true]\nc: null\nn: y\n")
            .expect("yaml")
            .remove(0);
        let Node::Map(entries) = &node else {
            panic!("not a map: {node:?}");
        };
        let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["b", "a", "c", "n"]);
        assert_eq!(node.get("n"), Some(&Node::Str("y".into())));
        let leaves: Vec<Option<Vec<u8>>> = match node.get("a") {
            Some(Node::List(items)) => items.iter().map(Node::mac_bytes).collect(),
            other => panic!("not a list: {other:?}"),
        };
        assert_eq!(
            leaves,
            [
                Some(b"x".to_vec()),
                Some(b"2.5".to_vec()),
                Some(b"True".to_vec())
            ]
        );
        assert_eq!(node.get("c"), Some(&Node::Null));
        let json: Node = serde_json::from_str(r#"{"z": 1, "y": false}"#).expect("json");
        assert_eq!(
            serde_json::to_string(&json).expect("json"),
            r#"{"z":1,"y":false}"#
        );
    }

    #[test]
    fn strings_that_look_like_other_types_stay_strings_in_yaml() {
        let node = Node::Map(vec![
            ("a".into(), Node::Str("123".into())),
            ("b".into(), Node::Str("true".into())),
            ("c".into(), Node::Str("two\nlines".into())),
            ("d".into(), Node::Str("yes".into())),
        ]);
        let yaml = serde_saphyr::to_string(&node).expect("yaml");
        let back = parse_yaml(&yaml).expect("yaml").remove(0);
        assert_eq!(back, node, "{yaml}");
    }
}
