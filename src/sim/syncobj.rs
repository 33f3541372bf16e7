//! DRM syncobjs (binary and timeline) of one file. (Placeholder: being written.)

/// The syncobj handles of one file.
#[derive(Debug, Default)]
pub(crate) struct SyncobjTable {}
