//! `podiam agent init`: the link the agent listens on — a dummy interface holding
//! 169.254.170.23/32 (required) and fd00:ec2::23/128 (optional), up, with host routes.
//! Runs iproute2's `ip`; idempotent.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::process::Command;

/// Why the link could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InitError(String);

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip {}`: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Creates (or reuses) dummy link `link`, assigns `v4`/32 and, best effort, `v6`/128, sets it
/// up and adds host routes. Returns the link that holds the addresses: `link`, or `lo` on a
/// kernel built without the dummy driver (the addresses are then local through loopback, which
/// serves the agent the same way).
pub fn init_link(link: &str, v4: Ipv4Addr, v6: Option<Ipv6Addr>) -> Result<String, InitError> {
    if link.is_empty() || link.len() > 15 || link.contains(['/', ' ']) {
        return Err(InitError(format!("invalid link name {link:?}")));
    }
    let mut link = link;
    if ip(&["link", "show", "dev", link]).is_err() {
        match ip(&["link", "add", link, "type", "dummy"]) {
            Ok(()) => tracing::info!(link, "created the dummy link"),
            Err(e) if e.contains("Unknown device type") => {
                tracing::warn!(error = %e, "this kernel has no dummy links: the addresses go on loopback instead");
                link = "lo";
            }
            Err(e) => return Err(InitError(e)),
        }
    }
    let v4s = format!("{v4}/32");
    ip(&["addr", "replace", &v4s, "dev", link]).map_err(InitError)?;
    if let Some(v6) = v6 {
        let v6s = format!("{v6}/128");
        if let Err(e) = ip(&["-6", "addr", "replace", &v6s, "dev", link, "nodad"]) {
            tracing::warn!(error = %e, "cannot assign the IPv6 address (continuing without it)");
        }
    }
    ip(&["link", "set", "dev", link, "up"]).map_err(InitError)?;
    if link == "lo" {
        // Loopback addresses are routed by the local table already.
        return Ok(link.to_owned());
    }
    if let Err(e) = ip(&["route", "replace", &v4s, "dev", link]) {
        tracing::warn!(error = %e, "cannot add the IPv4 host route");
    }
    if let Some(v6) = v6
        && let Err(e) = ip(&["-6", "route", "replace", &format!("{v6}/128"), "dev", link])
    {
        tracing::warn!(error = %e, "cannot add the IPv6 host route");
    }
    Ok(link.to_owned())
}
