#![doc = include_str!("../README.md")]

pub mod checkpoint;
pub mod h5;
mod recording;
mod scene;

pub use recording::{
    FORMAT_VERSION, IoError, RecorderPositions, RecordingWriter, RunMeta, partial_path,
};
pub use scene::{
    LoadedScene, Located, Scene, SceneError, load_scene, locate, parse_scene, path_at, sha256_hex,
};
