//! The file formats SOPS encrypts, as its stores read and write them: YAML and JSON documents
//! with a top-level `sops` map; dotenv with flattened `sops_*` keys; INI with a `[sops]`
//! section; binary files as a JSON envelope `{"data": ..., "sops": ...}`.

use super::metadata::unflatten;
use super::tree::Node;

/// A file format, chosen by file name as SOPS chooses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `.yaml`, `.yml`.
    Yaml,
    /// `.json` (and `.dockerconfigjson`).
    Json,
    /// `.env`.
    Dotenv,
    /// `.ini`.
    Ini,
    /// Anything else: the whole file is one value.
    Binary,
}

impl Format {
    /// The format SOPS uses for a file named `name`.
    pub fn for_name(name: &str) -> Format {
        if name.ends_with(".yaml") || name.ends_with(".yml") {
            Format::Yaml
        } else if name.ends_with(".json") || name.ends_with(".dockerconfigjson") {
            Format::Json
        } else if name.ends_with(".env") {
            Format::Dotenv
        } else if name.ends_with(".ini") {
            Format::Ini
        } else {
            Format::Binary
        }
    }
}

/// A parsed encrypted file: its documents and its metadata tree.
#[derive(Debug)]
pub struct Loaded {
    /// The documents (one, except for multi-document YAML), without the metadata.
    pub branches: Vec<Node>,
    /// The `sops` metadata, unflattened.
    pub metadata: Node,
}

/// Parses `bytes` as `format`; `Ok(None)` when it holds no SOPS metadata (not encrypted).
pub fn load(format: Format, bytes: &[u8]) -> Result<Option<Loaded>, String> {
    // Cheap test first: most files are not encrypted.
    if !contains(bytes, b"sops") {
        return Ok(None);
    }
    match format {
        Format::Yaml => {
            let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_string())?;
            let Ok(docs) = super::tree::parse_yaml(text) else {
                return Ok(None);
            };
            let mut docs: Vec<Node> = docs.into_iter().filter(|d| *d != Node::Null).collect();
            split_metadata(&mut docs)
        }
        Format::Json | Format::Binary => {
            let Ok(doc) = serde_json::from_slice::<Node>(bytes) else {
                return Ok(None);
            };
            split_metadata(&mut vec![doc])
        }
        Format::Dotenv => Ok(load_dotenv(bytes)),
        Format::Ini => Ok(load_ini(bytes)),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Takes the `sops` map out of every document; the first document's is the metadata.
fn split_metadata(docs: &mut Vec<Node>) -> Result<Option<Loaded>, String> {
    let Some(Node::Map(_)) = docs.first() else {
        return Ok(None);
    };
    let metadata = match docs[0].remove("sops") {
        Some(meta @ Node::Map(_)) => meta,
        Some(_) => return Err("its 'sops' entry is not a map".into()),
        None => return Ok(None),
    };
    for doc in docs.iter_mut().skip(1) {
        doc.remove("sops");
    }
    Ok(Some(Loaded {
        branches: std::mem::take(docs),
        metadata,
    }))
}

fn load_dotenv(bytes: &[u8]) -> Option<Loaded> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut entries = Vec::new();
    let mut meta = Vec::new();
    for line in text.split('\n') {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line.split_once('=')?;
        let value = value.replace("\\n", "\n");
        match key.strip_prefix("sops_") {
            Some(meta_key) => meta.push((meta_key.to_owned(), value)),
            None => entries.push((key.to_owned(), Node::Str(value))),
        }
    }
    (!meta.is_empty()).then(|| Loaded {
        branches: vec![Node::Map(entries)],
        metadata: unflatten(&meta),
    })
}

/// An INI section: its name and its `key = value` entries.
type Section = (String, Vec<(String, String)>);

/// Sections in file order, the unnamed `DEFAULT` section first (as go-ini lists them).
fn parse_ini(text: &str) -> Option<Vec<Section>> {
    let mut sections = vec![("DEFAULT".to_string(), Vec::new())];
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(';') || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            sections.push((name.trim().to_owned(), Vec::new()));
            continue;
        }
        let split = line.find(['=', ':'])?;
        let key = line[..split].trim().to_owned();
        let mut value = line[split + 1..].trim().to_owned();
        if let Some(rest) = value.strip_prefix("\"\"\"") {
            // A multi-line value, closed by the next `"""`.
            let mut full = rest.to_owned();
            while !full.ends_with("\"\"\"") {
                full.push('\n');
                full.push_str(lines.next()?);
            }
            value = full.trim_end_matches("\"\"\"").to_owned();
        } else if value.len() >= 2
            && ((value.starts_with('"') && value.ends_with('"'))
                || (value.starts_with('`') && value.ends_with('`')))
        {
            value = value[1..value.len() - 1].to_owned();
        }
        sections.last_mut()?.1.push((key, value));
    }
    Some(sections)
}

fn load_ini(bytes: &[u8]) -> Option<Loaded> {
    let sections = parse_ini(std::str::from_utf8(bytes).ok()?)?;
    let mut branch = Vec::new();
    let mut meta = None;
    for (name, entries) in sections {
        if name == "sops" && meta.is_none() {
            let flat: Vec<(String, String)> = entries
                .into_iter()
                .map(|(k, v)| (k, v.replace("\\n", "\n")))
                .collect();
            meta = Some(unflatten(&flat));
            continue;
        }
        let values = entries
            .into_iter()
            .map(|(k, v)| (k, Node::Str(v)))
            .collect();
        branch.push((name, Node::Map(values)));
    }
    Some(Loaded {
        branches: vec![Node::Map(branch)],
        metadata: meta?,
    })
}

/// Writes decrypted `branches` back in `format`.
pub fn emit(format: Format, branches: &[Node]) -> Result<Vec<u8>, String> {
    match format {
        Format::Yaml => {
            let mut out = String::new();
            for (i, doc) in branches.iter().enumerate() {
                if i > 0 {
                    out.push_str("---\n");
                }
                out.push_str(&serde_saphyr::to_string(doc).map_err(|e| e.to_string())?);
            }
            Ok(out.into_bytes())
        }
        Format::Json => {
            let doc = branches.first().unwrap_or(&Node::Null);
            serde_json::to_vec_pretty(doc).map_err(|e| e.to_string())
        }
        Format::Binary => match branches.first().and_then(|b| b.get("data")) {
            Some(Node::Str(s)) => Ok(s.clone().into_bytes()),
            Some(Node::Bytes(b)) => Ok(b.clone()),
            _ => Err("the binary envelope has no 'data' string".into()),
        },
        Format::Dotenv => {
            let mut out = String::new();
            for (key, value) in entries(branches.first())? {
                let text = value
                    .to_text()
                    .ok_or_else(|| format!("'{key}' is not a plain value"))?;
                out.push_str(&format!("{key}={}\n", text.replace('\n', "\\n")));
            }
            Ok(out.into_bytes())
        }
        Format::Ini => {
            let mut out = String::new();
            for (section, values) in entries(branches.first())? {
                let Node::Map(values) = values else {
                    return Err(format!("section '{section}' is not a map"));
                };
                if section == "DEFAULT" && values.is_empty() {
                    continue;
                }
                out.push_str(&format!("[{section}]\n"));
                for (key, value) in values {
                    let text = value
                        .to_text()
                        .ok_or_else(|| format!("'{section}.{key}' is not a plain value"))?;
                    if text.contains('\n') {
                        out.push_str(&format!("{key} = \"\"\"{text}\"\"\"\n"));
                    } else {
                        out.push_str(&format!("{key} = {text}\n"));
                    }
                }
                out.push('\n');
            }
            Ok(out.into_bytes())
        }
    }
}

fn entries(branch: Option<&Node>) -> Result<&[(String, Node)], String> {
    match branch {
        Some(Node::Map(entries)) => Ok(entries),
        _ => Err("the document is not a map".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_follow_the_file_name() {
        assert_eq!(Format::for_name("a.enc.yaml"), Format::Yaml);
        assert_eq!(Format::for_name("x.yml"), Format::Yaml);
        assert_eq!(Format::for_name("c.json"), Format::Json);
        assert_eq!(Format::for_name(".dockerconfigjson"), Format::Json);
        assert_eq!(Format::for_name("app.env"), Format::Dotenv);
        assert_eq!(Format::for_name("db.ini"), Format::Ini);
        assert_eq!(Format::for_name("cert.pem"), Format::Binary);
    }

    #[test]
    fn plain_files_are_not_encrypted() {
        assert!(load(Format::Yaml, b"a: b\n").expect("yaml").is_none());
        assert!(load(Format::Yaml, b"sops: {}\n").expect("yaml").is_some());
        assert!(load(Format::Dotenv, b"A=sops\n").expect("env").is_none());
        assert!(
            load(Format::Binary, b"\x00sops\xff")
                .expect("bin")
                .is_none()
        );
        assert!(
            load(Format::Ini, b"[a]\nb = sops\n")
                .expect("ini")
                .is_none()
        );
    }

    #[test]
    fn dotenv_and_ini_round_trip_values() {
        let loaded = load(
            Format::Dotenv,
            b"# c\nA=one\\ntwo\nsops_version=3\nsops_age__list_0__map_enc=x\\ny\n",
        )
        .expect("env")
        .expect("encrypted");
        assert_eq!(
            loaded.metadata.get("age"),
            Some(&Node::List(vec![Node::Map(vec![(
                "enc".into(),
                Node::Str("x\ny".into())
            )])]))
        );
        let out = emit(Format::Dotenv, &loaded.branches).expect("emit");
        assert_eq!(out, b"A=one\\ntwo\n");
        let loaded = load(
            Format::Ini,
            b"[db]\nuser = u\npass = \"p\"\n[sops]\nversion = 3\n",
        )
        .expect("ini")
        .expect("encrypted");
        let out = emit(Format::Ini, &loaded.branches).expect("emit");
        assert_eq!(
            String::from_utf8_lossy(&out),
            "[db]\nuser = u\npass = p\n\n"
        );
    }
}
