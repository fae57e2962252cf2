//! Connectivity rules (placeholder until the rules land).

use bevy_app::{App, Plugin};

/// Registers the built-in connectivity rules.
pub struct ConnectivityPlugin;

impl Plugin for ConnectivityPlugin {
    fn build(&self, _app: &mut App) {}
}
