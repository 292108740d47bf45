//! How actions on access entries are authorized beyond the action table: every action on an
//! entry carries what the entry is (its `eks:*` condition keys), and a pattern entry, a standing
//! grant to roles that may not exist yet, takes `podiam:ManageAccessEntryPattern` and the
//! action for each role it maps.

use super::params::Principal;
use super::pattern;
use crate::Control;
use crate::auth::{Caller, RequestMeta};
use crate::authz::{Action, Keys, Target};
use crate::error::Result;
use crate::model;
use crate::state::of_account;

/// Whether `action` changes an entry (what a pattern entry's extra checks guard).
pub(super) fn changes_entry(action: Action) -> bool {
    matches!(
        action,
        Action::EksUpdateAccessEntry
            | Action::EksDeleteAccessEntry
            | Action::EksAssociateAccessPolicy
            | Action::EksDisassociateAccessPolicy
    )
}

/// `own` (an action's keys), completed with what the entry is: `eks:principalArn` (as stored,
/// or as asked for when the entry is missing), `eks:accessEntryType`, `eks:username` and
/// `eks:kubernetesGroups` where `own` does not set them (an action setting `eks:username`
/// sets the groups as well, absent when there are none).
pub(super) fn stored_entry_keys(own: Keys, e: Option<&model::AccessEntry>, asked: &str) -> Keys {
    let mut k = own;
    if !k.has("eks:principalArn") {
        k = k.with(
            "eks:principalArn",
            e.map_or(asked, |e| e.principal_arn.as_str()),
        );
    }
    let Some(e) = e else { return k };
    if !k.has("eks:accessEntryType") {
        k = k.with("eks:accessEntryType", e.kind.as_str());
    }
    // An action that names the username (an update) names the groups it leaves too.
    if !k.has("eks:username") {
        k = k.with("eks:username", e.username.as_str());
        if !e.kubernetes_groups.is_empty() {
            k = k.with_multi("eks:kubernetesGroups", e.kubernetes_groups.clone());
        }
    }
    k
}

impl Control {
    /// A pattern entry is a standing grant to roles that may not exist yet, so making or
    /// changing one (create, update, delete, associate and disassociate policies) takes more
    /// than the EKS action: `podiam:ManageAccessEntryPattern` on the cluster, which no `eks:*`
    /// grant covers, with the action's keys; and the EKS action itself with `eks:principalArn`
    /// set to each existing role the pattern maps, so a Deny naming a role is not side-stepped
    /// through a pattern matching it. `target` is what `action` is authorized on.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn authorize_pattern(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        action: Action,
        target: &Target,
        cluster: &str,
        p: &Principal,
        keys: &Keys,
    ) -> Result<()> {
        self.cluster_for(
            caller,
            meta,
            Action::PodiamManageAccessEntryPattern,
            cluster,
            keys.clone(),
        )?;
        let matched: Vec<String> = {
            let t = self.db.read();
            of_account(&t.roles, &p.account)
                .filter(|(_, r)| pattern::matches(p, &r.value.path, &r.value.name))
                .map(|(_, r)| Target::role(&p.account, &r.value).arn().to_owned())
                .collect()
        };
        for arn in matched {
            let mut k = Keys::none();
            for (name, values) in keys.entries() {
                if !name.eq_ignore_ascii_case("eks:principalArn") {
                    k = k.with_multi(name.clone(), values.clone());
                }
            }
            self.authorize(
                caller,
                action,
                target,
                meta,
                k.with("eks:principalArn", arn),
            )?;
        }
        Ok(())
    }
}
