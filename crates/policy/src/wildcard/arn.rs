//! ARN patterns: the six `:`-separated fields matched separately (the `Arn*` condition
//! operators), or with a field-ending `*` crossing `:` (`Resource`/`NotResource`), over the
//! wildcard [`Pattern`]s of the parent module.

use super::{Op, Pattern, Piece, glob};

/// Splits `value` into the six ARN fields (the sixth keeps any further `:`).
pub(crate) fn split_arn(value: &str) -> Option<[&str; 6]> {
    let mut cuts = [0usize; 5];
    let mut found = 0usize;
    for (i, b) in value.bytes().enumerate() {
        if b == b':' {
            if let Some(cut) = cuts.get_mut(found) {
                *cut = i;
            }
            found += 1;
            if found == 5 {
                break;
            }
        }
    }
    if found < 5 {
        return None;
    }
    let [a, b, c, d, e] = cuts;
    Some([
        value.get(..a)?,
        value.get(a + 1..b)?,
        value.get(b + 1..c)?,
        value.get(c + 1..d)?,
        value.get(d + 1..e)?,
        value.get(e + 1..)?,
    ])
}

/// A compiled ARN pattern (used for `Resource`/`NotResource` and the `Arn*` operators).
///
/// Rules:
/// * a pattern made only of `*` matches every value;
/// * if both pattern and value have six ARN fields, each of the first five fields is matched
///   separately and the sixth (resource) field is matched as a whole; for resource patterns
///   a field ending with a wildcard `*` may also cross the `:` that follow it (see the
///   module documentation);
/// * an ARN-shaped value never matches a pattern with fewer than six fields (other than `*`);
/// * a value that is not ARN-shaped is matched against the whole pattern as plain text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ArnPattern {
    /// The whole pattern (in [`ArnShape::Fields`], its first five `:` are `Sep`s).
    pattern: Pattern,
    shape: ArnShape,
}

/// Where an ARN pattern's wildcards are, which decides how it is matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ArnShape {
    /// Fewer than six fields: matches no ARN-shaped value; other values as text.
    Short,
    /// Six fields, wildcards only in the resource field: the first five fields are literal
    /// (with their `:`), so matching the whole text is matching field by field.
    Whole,
    /// Six fields with wildcards in the first five: matched field by field.
    Fields {
        /// Instruction index of the five field separators.
        seps: [usize; 5],
        /// Bit `i` set: field `i` ends with a `*` that may cross `:` (resource patterns).
        crossing: u8,
    },
}

/// The shape of the pattern made of `pieces`, before compiling it.
fn arn_shape(pieces: &[Piece<'_>]) -> ArnShape {
    let mut colons = 0usize;
    let mut early_wildcard = false;
    for piece in pieces {
        let wild = matches!(piece, Piece::Wild(_));
        for b in piece.text().bytes() {
            if b == b':' {
                colons += 1;
                if colons == 5 {
                    return if early_wildcard {
                        ArnShape::Fields {
                            seps: [0; 5],
                            crossing: 0,
                        }
                    } else {
                        ArnShape::Whole
                    };
                }
            } else if wild && (b == b'*' || b == b'?') {
                early_wildcard = true;
            }
        }
    }
    ArnShape::Short
}

impl ArnPattern {
    /// Compiles an ARN pattern for the `Arn*` condition operators: wildcards never cross the
    /// first five `:`.
    pub(crate) fn compile(pieces: &[Piece<'_>]) -> ArnPattern {
        match arn_shape(pieces) {
            ArnShape::Fields { .. } => match Pattern::build(pieces, 5) {
                (pattern, Some(seps)) => ArnPattern {
                    pattern,
                    shape: ArnShape::Fields { seps, crossing: 0 },
                },
                // Not reached: a pattern with five `:` and a wildcard has five separators.
                (pattern, None) => ArnPattern {
                    pattern,
                    shape: ArnShape::Short,
                },
            },
            shape => ArnPattern {
                pattern: Pattern::compile(pieces),
                shape,
            },
        }
    }

    /// Compiles a `Resource`/`NotResource` pattern: a `*` that ends one of the first five
    /// fields may expand beyond the `:` boundaries.
    pub(crate) fn compile_resource(pieces: &[Piece<'_>]) -> ArnPattern {
        let mut p = Self::compile(pieces);
        if let ArnShape::Fields { seps, crossing } = &mut p.shape {
            for (i, &sep) in seps.iter().enumerate() {
                let ends_with_star = sep
                    .checked_sub(1)
                    .and_then(|k| p.pattern.ops.get(k))
                    .is_some_and(|op| *op == Op::Star);
                if ends_with_star {
                    *crossing |= 1 << i;
                }
            }
        }
        p
    }

    /// Compiles an ARN pattern whose `*` and `?` are all wildcards.
    #[cfg(test)]
    pub(crate) fn new(source: &str) -> ArnPattern {
        Self::compile(&[Piece::Wild(source)])
    }

    /// Compiles a resource pattern whose `*` and `?` are all wildcards.
    #[cfg(test)]
    pub(crate) fn new_resource(source: &str) -> ArnPattern {
        Self::compile_resource(&[Piece::Wild(source)])
    }

    /// The instructions of field `i` (0..=5).
    fn field(&self, seps: &[usize; 5], i: usize) -> &[Op] {
        let start = match i.checked_sub(1) {
            None => 0,
            Some(k) => seps.get(k).map_or(usize::MAX, |s| s + 1),
        };
        self.pattern.ops_in(start, seps.get(i).copied())
    }

    /// Does `value` match?
    pub(crate) fn is_match(&self, value: &str) -> bool {
        if self.pattern.ops.is_empty() {
            // No wildcard: matching field by field is string equality, and so is matching a
            // non-ARN value as text; a pattern and a value with different numbers of fields
            // are never equal.
            return value == self.pattern.buf;
        }
        if self.pattern.matches_everything() {
            return true;
        }
        let whole = || glob(&self.pattern.ops, &self.pattern.buf, value);
        match self.shape {
            // A non-ARN value cannot match either: the pattern's five literal `:` come before
            // its first wildcard.
            ArnShape::Whole => whole(),
            ArnShape::Short => split_arn(value).is_none() && whole(),
            ArnShape::Fields { seps, crossing } => match split_arn(value) {
                None => whole(),
                Some(values) if crossing == 0 => values
                    .iter()
                    .enumerate()
                    .all(|(i, v)| glob(self.field(&seps, i), &self.pattern.buf, v)),
                Some(_) => self.crossing_match(&seps, crossing, value),
            },
        }
    }

    /// Field-wise matching where the fields flagged in `crossing` may swallow whole `:`-separated
    /// fields of the value after their own. Dynamic programming over (pattern field, value
    /// field where it starts): `O(fields of the value)` glob matches, whatever the input.
    fn crossing_match(&self, seps: &[usize; 5], crossing: u8, value: &str) -> bool {
        let mut starts: Vec<usize> = Vec::with_capacity(8);
        starts.push(0);
        starts.extend(value.match_indices(':').map(|(i, _)| i + 1));
        let n = starts.len();
        let segment = |j: usize| -> &str {
            let start = starts.get(j).copied().unwrap_or(value.len());
            let end = starts
                .get(j + 1)
                .map_or(value.len(), |next| next.saturating_sub(1));
            value.get(start..end).unwrap_or_default()
        };
        let buf = &self.pattern.buf;
        // reach[j]: the current pattern field can start at value field j.
        let mut reach = vec![false; n];
        let mut next = vec![false; n];
        if let Some(first) = reach.first_mut() {
            *first = true;
        }
        for i in 0..5 {
            let ops = self.field(seps, i);
            let crossing = crossing & (1 << i) != 0;
            next.iter_mut().for_each(|r| *r = false);
            for j in 0..n {
                if !reach.get(j).copied().unwrap_or(false) || !glob(ops, buf, segment(j)) {
                    continue;
                }
                if crossing {
                    // The trailing `*` swallows the rest of field j and any number of whole
                    // fields after it: every later field can start the next pattern field.
                    next.iter_mut().skip(j + 1).for_each(|r| *r = true);
                    break;
                }
                if let Some(r) = next.get_mut(j + 1) {
                    *r = true;
                }
            }
            std::mem::swap(&mut reach, &mut next);
        }
        let resource = self.field(seps, 5);
        (0..n).any(|j| {
            reach.get(j).copied().unwrap_or(false)
                && starts
                    .get(j)
                    .and_then(|&s| value.get(s..))
                    .is_some_and(|rest| glob(resource, buf, rest))
        })
    }
}
