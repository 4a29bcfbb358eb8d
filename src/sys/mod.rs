//! The platform layer: the only place that names an OS API.
pub(crate) mod detach;
