//! Listings: one page of items and the marker of the next.

use crate::error::Result;
use crate::names;

/// One page of a listing.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// Items of this page.
    pub items: Vec<T>,
    /// Marker for the next page, when truncated.
    pub marker: Option<String>,
}

/// A page request.
#[derive(Debug, Clone, Default)]
pub struct PageReq {
    /// Marker from the previous page.
    pub marker: Option<String>,
    /// 1..=1000, default 100.
    pub max_items: Option<i64>,
}

impl PageReq {
    pub(crate) fn size(&self) -> Result<usize> {
        match self.max_items {
            None => Ok(100),
            Some(n @ 1..=1000) => Ok(usize::try_from(n).unwrap_or(100)),
            Some(n) => Err(names::constraint(
                &n.to_string(),
                "maxItems",
                "Member must have value between 1 and 1000",
            )),
        }
    }
}

pub(crate) fn paginate<T: Clone>(
    items: impl Iterator<Item = (String, T)>,
    page: &PageReq,
) -> Result<Page<T>> {
    let size = page.size()?;
    let mut out = Vec::new();
    let mut marker = None;
    for (key, item) in items {
        if let Some(m) = &page.marker
            && key.as_str() <= m.as_str()
        {
            continue;
        }
        if out.len() == size {
            marker = out.last().map(|(k, _): &(String, T)| k.clone());
            break;
        }
        out.push((key, item));
    }
    Ok(Page {
        items: out.into_iter().map(|(_, v)| v).collect(),
        marker,
    })
}
