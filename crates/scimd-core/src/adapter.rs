//! Hooks an application uses to reshape SCIM resources on their way out of and into its
//! storage (the `to_scim` / `from_scim` of the Django apps). Both see canonical attributes:
//! names as the schema spells them, extension attributes under their schema URN.

use crate::store::Kind;
use scimd_proto::ScimError;
use serde_json::{Map, Value};

pub trait Adapter: Send + Sync + 'static {
    /// Called on every resource leaving the store, before `attributes` /
    /// `excludedAttributes` are applied: add computed attributes, rename, hide.
    fn to_scim(&self, kind: Kind, id: &str, attributes: &mut Map<String, Value>) {
        let _ = (kind, id, attributes);
    }

    /// Whether `to_scim` leaves every resource as the store has it: reads are then answered
    /// from the stored JSON text, without building each resource as a map. Only an adapter
    /// that keeps the default `to_scim` may say so.
    fn reads_as_stored(&self) -> bool {
        false
    }

    /// Called on the attributes a create, replace or patch is about to store, after
    /// validation: normalise, derive, or refuse with a SCIM error. Attributes the adapter
    /// adds must belong to the resource type's schemas.
    // Named after the Django apps' hook, which users of both will look for.
    #[allow(clippy::wrong_self_convention)]
    fn from_scim(&self, kind: Kind, attributes: &mut Map<String, Value>) -> Result<(), ScimError> {
        let _ = (kind, attributes);
        Ok(())
    }
}

/// The adapter that changes nothing.
pub struct Identity;

impl Adapter for Identity {
    fn reads_as_stored(&self) -> bool {
        true
    }
}
