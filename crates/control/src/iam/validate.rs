//! Validation of IAM inputs to the AWS limits: policy documents, tags, provider client ids
//! and thumbprints.

use podiam_policy as policy;

use super::limits;
use crate::error::{AwsError, Result};
use crate::model::Tag;
use crate::names;

/// Count a policy's characters the way IAM does: whitespace outside strings is not counted.
pub fn policy_chars(doc: &str) -> usize {
    let mut n = 0;
    let mut in_str = false;
    let mut esc = false;
    for c in doc.chars() {
        if in_str {
            n += 1;
            if esc {
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == '"' {
                in_str = false;
            }
        } else if c == '"' {
            in_str = true;
            n += 1;
        } else if !c.is_whitespace() {
            n += 1;
        }
    }
    n
}

/// Parse and validate a policy document for writing.
pub fn validate_policy(
    doc: &str,
    kind: policy::PolicyKind,
    max_chars: usize,
    member: &str,
) -> Result<policy::Policy> {
    names::bounded(doc, member, 1, 131_072)?;
    if policy_chars(doc) > max_chars {
        return Err(AwsError::limit_exceeded(format!(
            "cannot exceed quota for {member}: {max_chars}"
        )));
    }
    policy::Policy::parse(doc, kind).map_err(|e| AwsError::malformed_policy(e.to_string()))
}

pub(super) fn validate_tags(tags: &[Tag]) -> Result<()> {
    if tags.len() > limits::TAGS {
        return Err(AwsError::limit_exceeded(format!(
            "the number of tags has reached the maximum limit of {}",
            limits::TAGS
        )));
    }
    for (i, t) in tags.iter().enumerate() {
        names::tag(&t.key, &t.value)?;
        let folded = policy::fold_key(&t.key);
        if folded.starts_with("aws:") {
            return Err(AwsError::invalid_input(format!(
                "tag key {:?} uses the reserved prefix aws:",
                t.key
            )));
        }
        // Keys that fold to one key are one key (the engine sees one `aws:RequestTag/...`):
        // IAM refuses them side by side.
        if tags
            .iter()
            .take(i)
            .any(|o| policy::fold_key(&o.key) == folded)
        {
            return Err(AwsError::invalid_input(
                "Duplicate tag keys found. Please note that Tag keys are case insensitive.",
            ));
        }
    }
    Ok(())
}

pub(super) fn validate_tag_keys(keys: &[String]) -> Result<()> {
    if keys.len() > limits::TAGS {
        return Err(names::constraint(
            "",
            "tagKeys",
            &format!(
                "Member must have length less than or equal to {}",
                limits::TAGS
            ),
        ));
    }
    for k in keys {
        names::bounded(k, "tagKeys.member", 1, 128)?;
    }
    Ok(())
}

/// Merge tags into an entity's tags (a key folding to the same key is replaced).
pub(super) fn merge_tags(existing: &[Tag], new: &[Tag]) -> Result<Vec<Tag>> {
    validate_tags(new)?;
    let mut out: Vec<Tag> = existing
        .iter()
        .filter(|t| {
            !new.iter()
                .any(|n| policy::fold_key(&n.key) == policy::fold_key(&t.key))
        })
        .cloned()
        .collect();
    out.extend(new.iter().cloned());
    if out.len() > limits::TAGS {
        return Err(AwsError::limit_exceeded(format!(
            "the number of tags has reached the maximum limit of {}",
            limits::TAGS
        )));
    }
    Ok(out)
}

/// Remove the tags whose keys fold to one of `keys`.
pub(super) fn remove_tags(existing: &[Tag], keys: &[String]) -> Vec<Tag> {
    let folded: Vec<String> = keys.iter().map(|k| policy::fold_key(k)).collect();
    existing
        .iter()
        .filter(|t| !folded.contains(&policy::fold_key(&t.key)))
        .cloned()
        .collect()
}

pub(super) fn tag_pairs(tags: &[Tag]) -> impl Iterator<Item = (&str, &str)> {
    tags.iter().map(|t| (t.key.as_str(), t.value.as_str()))
}

pub(super) fn dedup(mut v: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    v.retain(|x| seen.insert(x.clone()));
    v
}

pub(super) fn validate_client_ids(ids: &[String]) -> Result<()> {
    if ids.len() > limits::CLIENT_IDS {
        return Err(AwsError::limit_exceeded(format!(
            "cannot exceed quota for ClientIdsPerOpenIdConnectProvider: {}",
            limits::CLIENT_IDS
        )));
    }
    for c in ids {
        names::bounded(c, "clientIDList.member", 1, 255)?;
    }
    Ok(())
}

pub(super) fn validate_thumbprints(t: Vec<String>) -> Result<Vec<String>> {
    if t.len() > limits::THUMBPRINTS {
        return Err(AwsError::limit_exceeded(format!(
            "thumbprint list must contain fewer than {} entries",
            limits::THUMBPRINTS + 1
        )));
    }
    for x in &t {
        if x.len() != 40 {
            return Err(names::constraint(
                x,
                "thumbprintList.member",
                "Member must have length equal to 40",
            ));
        }
        if !x.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(AwsError::invalid_input(format!(
                "thumbprint {x:?} must be 40 hexadecimal characters"
            )));
        }
    }
    Ok(dedup(t.into_iter().map(|x| x.to_lowercase()).collect()))
}
