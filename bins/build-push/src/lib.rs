//! build-push: streams a model directory into a ModelCar OCI image (DESIGN.md sections 5, 6).

pub mod chunks;
pub mod plan;
pub mod tar_layout;
