use bevy_ecs::prelude::*;

/// A projection from a source population to a target population: one entity per
/// projection. It owns its [`crate::Connectivity`].
#[derive(Component, Clone, Debug)]
pub struct Projection {
    /// Display name (`"SOURCE->TARGET"` unless the scene names it).
    pub name: String,
    /// The source population entity.
    pub source: Entity,
    /// The target population entity.
    pub target: Entity,
}
